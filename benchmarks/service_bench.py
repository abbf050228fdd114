"""`genadapt-bench service`: what the service costs around the network, on any machine.

Two measurements, both with the network replaced by a replay of a realistic label map
(replay_server.py), so that the numbers are the service's own:
- by stage, in one thread: a 2048×1024 JPEG → decode (as predict does) → label PNG encode
  (`serve.pipeline.segment_bytes`): as shipped (TurboJPEG decode, ISA-L deflate) and, for the
  ratios, with Pillow's decode and with zlib's deflate;
- over HTTP with keep-alive clients at concurrency 1, 8 and 16: requests/s, latency, and the
  server's own split from Server-Timing (decode, io_wait, queue, encode).
Requests/s here is the ceiling the service puts on any GPU behind it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genadapt.benchmarks.common import Reports, parse_size
from genadapt.benchmarks.http_bench import run_http
from genadapt.benchmarks.pipeline import sample_jpeg
from genadapt.benchmarks.registry import Benchmark
from genadapt.benchmarks.replay_server import ReplaySegmenter
from genadapt.benchmarks.report import http_markdown, rows_markdown
from genadapt.benchmarks.server import replaying
from genadapt.benchmarks.timing import environment, summarize, watching_the_machine
from genadapt.serve.pipeline import segment_bytes

# (decoder, deflate) of each by-stage row: the service as shipped first, then with each of
# this round's two host-side changes taken out, for the ratios measured in the same run.
HOST_VARIANTS = [("turbojpeg", "isal"), ("pillow", "isal"), ("pillow", "zlib")]


def host_stages(network: tuple[int, int], reps: int) -> dict:
    """p50 of each stage of segment_bytes on a 2048×1024 JPEG, for each of HOST_VARIANTS:
    JPEG decoded by TurboJPEG or Pillow, PNG deflated by ISA-L or zlib. The variants take turns
    request by request, so that a machine whose speed drifts (a shared host) moves them alike."""
    import genadapt.encoding as encoding
    import genadapt.turbo_jpeg as turbo_jpeg

    data, segmenter = sample_jpeg(), ReplaySegmenter(network)
    samples: dict[str, dict[str, list[float]]] = {f"{d}+{z}": {} for d, z in HOST_VARIANTS}
    isal, simplejpeg = encoding._isal_zlib, turbo_jpeg._simplejpeg
    try:
        for rep in range(reps + 2):
            for decoder, deflate in HOST_VARIANTS:
                encoding._isal_zlib = isal if deflate == "isal" else None
                turbo_jpeg._simplejpeg = simplejpeg if decoder == "turbojpeg" else None
                _, timings = segment_bytes(data, segmenter)
                if rep >= 2:  # two warm-up passes
                    for stage, seconds in timings.items():
                        samples[f"{decoder}+{deflate}"].setdefault(stage, []).append(seconds)
    finally:
        encoding._isal_zlib, turbo_jpeg._simplejpeg = isal, simplejpeg
    return {
        variant: {stage: summarize(v) for stage, v in stages.items() if stage != "network"}
        for variant, stages in samples.items()
    }


def run_service(network: tuple[int, int], reps: int, levels: list[int], requests: int) -> dict:
    results: dict = {"environment": environment("cpu"), "network": list(network)}
    results["input"] = "2048x1024 JPEG q90 → label PNG at 2× the network size"
    with watching_the_machine() as machine:
        results["host_stages"] = host_stages(network, reps)
    results["machine"] = machine
    with replaying(network) as server, watching_the_machine([server.pid]) as machine:
        results["http"] = run_http(server.url, sample_jpeg(), levels, requests)
    results["http"]["machine"] = machine
    shipped, pillow, zlib = (results["host_stages"][f"{d}+{z}"] for d, z in HOST_VARIANTS)
    results["host_ms"] = round(shipped["decode"]["p50_ms"] + shipped["encode"]["p50_ms"], 2)
    results["decode_speedup_turbojpeg_vs_pillow"] = _ratio(pillow, shipped, "decode")
    results["encode_speedup_isal_vs_zlib"] = _ratio(zlib, pillow, "encode")
    results["total_speedup_vs_pillow_zlib"] = _ratio(zlib, shipped, "total")
    return results


def _ratio(slow: dict, fast: dict, stage: str) -> float:
    return round(slow[stage]["p50_ms"] / fast[stage]["p50_ms"], 2)


def service_markdown(results: dict) -> str:
    rows = [
        {"decoder + deflate": variant, **{s: v["p50_ms"] for s, v in stages.items()}}
        for variant, stages in results["host_stages"].items()
    ]
    lines = [
        f"# The service around the network on {results['environment']['device']}",
        "",
        f"{results['input']}; network {results['network'][0]}×{results['network'][1]} replayed. "
        f"The service's own time per request (decode + encode, p50): {results['host_ms']} ms. "
        f"In the same run: TurboJPEG decodes {results['decode_speedup_turbojpeg_vs_pillow']}× "
        f"faster than Pillow, ISA-L's deflate encodes {results['encode_speedup_isal_vs_zlib']}× "
        f"faster than zlib's, and the two together take {results['total_speedup_vs_pillow_zlib']}× "
        "less time than Pillow + zlib.",
        "",
        rows_markdown(
            "By stage, one thread (p50 ms)",
            rows,
            ["decoder + deflate", "decode", "encode", "total"],
        ),
        http_markdown({**results["http"], "environment": results["environment"]}),
    ]
    return "\n".join(lines) + "\n"


def service_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", default="1024x512", help="WxH of the replayed network")
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    p.add_argument("--requests", type=int, default=160)
    p.add_argument("--quick", action="store_true", help="few requests: the path only")
    p.add_argument("--out", type=Path, required=True)


def cmd_service(args: argparse.Namespace) -> dict:
    if args.quick:
        results = run_service((256, 128), 3, [1, 2], 6)
    else:
        results = run_service(parse_size(args.network), args.reps, args.concurrency, args.requests)
    return Reports(args.out).write("service", results, service_markdown(results))


BENCHMARKS = [
    Benchmark("service", "the service around the network (replayed): host ms, requests/s",
              service_arguments, cmd_service),
]  # fmt: skip
