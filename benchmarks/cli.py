"""`genadapt-bench`: table3 | pipeline | http | suite.

    genadapt-bench table3 [--sizes 512x256 640x320 1024x512] [--width 1.0] [--quick] --out DIR
    genadapt-bench pipeline [--model CKPT] [--quick] --out DIR
    genadapt-bench http [--url URL | --model MODEL] [--concurrency 1 2 4 8] --out DIR
    genadapt-bench eval [--model CKPT] [--images 8] --out DIR   # evaluation throughput
    genadapt-bench suite [--out benchmarks/results]   # all three, sized for this machine
    genadapt-bench gpu-check --out DIR   # every GPU path, PASS/FAIL each (benchmarks/gpu_check.sh)

Results are JSON plus Markdown (and a PNG chart for table3) in --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

from genadapt.benchmarks.http_bench import run_http
from genadapt.benchmarks.pipeline import run_pipeline, sample_jpeg
from genadapt.benchmarks.report import rows_markdown, table3_chart, table3_markdown
from genadapt.benchmarks.server import serving
from genadapt.benchmarks.table3 import BenchConfig, run_table3
from genadapt.benchmarks.timing import device_name, environment
from genadapt.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from genadapt.cli import run_cli, setup_logging
from genadapt.datasets import SegmentationDataset
from genadapt.errors import GenadaptError
from genadapt.evaluate import evaluate
from genadapt.fileio import atomic_write_bytes
from genadapt.labels import CITYSCAPES19
from genadapt.model import ModelConfig, build_model
from genadapt.runtime import TorchSegmenter
from genadapt.runtime.onnx_backend import OnnxSegmenter
from genadapt.scenes.generate import generate_scenes

log = logging.getLogger(__name__)
PAPER_SIZES = [(512, 256), (640, 320), (1024, 512)]


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def _device(arg: str) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if arg == "auto" else arg


def _write(out: Path, name: str, data: dict, markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / f"{name}.json", json.dumps(data, indent=2).encode())
    atomic_write_bytes(out / f"{name}.md", markdown.encode())
    print(markdown)


def cmd_table3(args: argparse.Namespace) -> dict:
    device = _device(args.device)
    cuda = device.startswith("cuda")
    if args.quick:
        cfg = BenchConfig(
            [(128, 64)],
            width=0.125,
            train_width=0.125,
            batches=(1, 2),
            warmup=1,
            reps=3,
            train_reps=2,
            budget_s=5,
            device=device,
        )
    else:
        cfg = BenchConfig(
            [_size(s) for s in args.sizes] if args.sizes else PAPER_SIZES,
            width=args.width,
            train_width=args.train_width or (1.0 if cuda else 0.25),
            padding=args.padding,
            batches=tuple(args.batches),
            reps=args.reps,
            train_reps=args.train_reps,
            budget_s=args.budget_s,
            device=device,
        )
    results = run_table3(cfg)
    _write(args.out, "table3", results, table3_markdown(results))
    table3_chart(results, args.out / "table3.png")
    return results


def _checkpoint(args: argparse.Namespace) -> Checkpoint:
    if getattr(args, "model", None):
        return load_checkpoint(args.model)
    size = (128, 64) if args.quick else _size(args.size)
    width = 0.125 if args.quick else args.width
    return Checkpoint.from_model(build_model(ModelConfig(19, width, "pad1")), CITYSCAPES19, size)


def cmd_pipeline(args: argparse.Namespace) -> dict:
    device = _device(args.device)
    results = run_pipeline(
        _checkpoint(args), ["torch", "onnxruntime"], 3 if args.quick else args.reps, device
    )
    lines = [
        f"# Host image → host label map on {results['environment']['device']}",
        "",
        f"Input {results['input']}; network at {results['network_size']}; p50 ms per stage.",
        "",
    ]
    for backend, stages in results["backends"].items():
        if "skipped" in stages:
            lines.append(f"- {backend}: skipped ({stages['skipped']})")
            continue
        rows = [
            {"stage": k, "p50 ms": v["p50_ms"], "p90 ms": v["p90_ms"]} for k, v in stages.items()
        ]
        lines.append(rows_markdown(backend, rows, ["stage", "p50 ms", "p90 ms"]))
    _write(args.out, "pipeline", results, "\n".join(lines) + "\n")
    return results


def cmd_http(args: argparse.Namespace) -> dict:
    body = sample_jpeg()
    concurrency = [1, 2] if args.quick else args.concurrency
    requests = 6 if args.quick else args.requests
    if args.url is not None:
        url = args.url
        results = run_http(url, body, concurrency, requests)
    else:  # start a loopback server of our own and stop it afterwards
        with tempfile.TemporaryDirectory(prefix="genadapt-bench-") as tmp:
            model = args.model or save_checkpoint(_checkpoint(args), Path(tmp) / "model.pt")
            with serving(model, _device(args.device)) as url:
                results = run_http(url, body, concurrency, requests)
    rows = [
        {
            "concurrency": lv["concurrency"],
            "req/s": lv["throughput_rps"],
            "p50 ms": lv["latency"]["p50_ms"],
            "p90 ms": lv["latency"]["p90_ms"],
            "p99 ms": lv["latency"]["p99_ms"],
            **{f"server {k} ms": v for k, v in lv["server_median_ms"].items()},
            "overhead beyond network ms": lv["overhead_beyond_network_ms"],
            "errors": lv["errors"],
        }
        for lv in results["levels"]
    ]
    markdown = rows_markdown(f"HTTP: 2048×1024 JPEG in, label PNG out ({url})", rows, list(rows[0]))
    _write(args.out, "http", results, markdown)
    return results


def cmd_eval(args: argparse.Namespace) -> dict:
    """Evaluation throughput on full-resolution (2048×1024) labelled images, split into loading,
    inference and scoring, with the same code genadapt-eval runs."""
    checkpoint = _checkpoint(args)
    count, label_size = (2, (256, 128)) if args.quick else (args.images, (2048, 1024))
    with tempfile.TemporaryDirectory(prefix="genadapt-bench-eval-") as tmp:
        generate_scenes(
            Path(tmp), label_size, source=0, target_train=0, target_val=count, unseen=0, workers=2
        )
        dataset = SegmentationDataset(
            "cityscapes", Path(tmp) / "target", "val", label_space=checkpoint.label_space
        )
        backend = "torch" if args.backend == "torch" else "onnxruntime"
        device = _device(args.device)
        segmenter = (
            TorchSegmenter.from_checkpoint(checkpoint, device)
            if backend == "torch"
            else OnnxSegmenter.from_checkpoint(checkpoint, device)
        )
        started = time.perf_counter()
        result = evaluate(segmenter, dataset, num_workers=args.workers, progress=False)
        wall = time.perf_counter() - started
    seconds = result.seconds
    results = {
        "environment": environment(_device(args.device)),
        "backend": backend,
        "segmenter": segmenter.describe(),  # the device and, for ONNX Runtime, its providers
        "images": result.images,
        "label_size": list(label_size),
        "network_size": list(checkpoint.input_size),
        "wall_s": round(wall, 3),
        "images_per_s": round(result.images / wall, 3),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    rows = [
        {"stage": k, "seconds": round(v, 3), "per image ms": round(1000 * v / result.images, 1)}
        for k, v in seconds.items()
    ]
    title = (
        f"Evaluation: {result.images} images with {label_size[0]}×{label_size[1]} labels, "
        f"{backend}, {results['images_per_s']} img/s"
    )
    _write(
        args.out, "eval", results, rows_markdown(title, rows, ["stage", "seconds", "per image ms"])
    )
    return results


def cmd_suite(args: argparse.Namespace) -> dict:
    """Every benchmark, sized to finish within about 8 minutes on this machine."""
    device = _device(args.device)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device_name(device)).strip("-").lower()
    out = args.out / slug
    cuda = device.startswith("cuda")
    common = {"device": device, "quick": args.quick, "model": None}
    table3 = argparse.Namespace(
        **common,
        out=out,
        sizes=None if cuda else ["512x256", "1024x512"],
        width=1.0,
        train_width=1.0 if cuda else 0.25,
        padding="pad1",
        batches=[1, 4] if cuda else [1],
        reps=30 if cuda else 3,
        train_reps=10 if cuda else 3,
        budget_s=15 if cuda else 40,
    )
    results = {"table3": cmd_table3(table3)}
    pipe = argparse.Namespace(**common, out=out, size="1024x512", width=1.0, reps=10 if cuda else 3)
    results["pipeline"] = cmd_pipeline(pipe)
    http = argparse.Namespace(
        **common,
        out=out,
        url=None,
        size="1024x512",
        width=1.0,
        concurrency=[1, 2, 4, 8] if cuda else [1, 2],
        requests=32 if cuda else 6,
    )
    results["http"] = cmd_http(http)
    evaluation = argparse.Namespace(
        **common,
        out=out,
        size="1024x512",
        width=1.0,
        images=32 if cuda else 4,
        workers=2,
        backend="onnxruntime",
    )
    results["eval"] = cmd_eval(evaluation)
    log.info("suite results in %s", out)
    return results


def cmd_gpu_check(args: argparse.Namespace) -> dict:
    from genadapt.benchmarks.gpu_check import run_gpu_check

    results = run_gpu_check(args.out, _device(args.device), args.quick, args.budget_s)
    failed = [name for name, c in results["checks"].items() if c["status"] != "PASS"]
    if failed:
        raise GenadaptError(f"gpu-check: not passed: {', '.join(failed)} (see {args.out})")
    return results


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genadapt-bench", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table3", help="train s/iter and eval s/image beside the paper's Table 3")
    t.add_argument("--sizes", nargs="+", help="WxH (default: the paper's three sizes)")
    t.add_argument("--width", type=float, default=1.0, help="F+C width for evaluation")
    t.add_argument("--train-width", type=float, default=None, help="default 1.0 (GPU), 0.25 (CPU)")
    t.add_argument("--padding", choices=("pad1", "pad100"), default="pad1")
    t.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    t.add_argument("--reps", type=int, default=30)
    t.add_argument("--train-reps", type=int, default=10)
    t.add_argument("--budget-s", type=float, default=20.0, help="time cap per measurement")
    pl = sub.add_parser("pipeline", help="2048×1024 JPEG on the host → label map on the host")
    pl.add_argument("--model", type=Path, help="a checkpoint (default: random F+C)")
    pl.add_argument("--size", default="1024x512")
    pl.add_argument("--width", type=float, default=1.0)
    pl.add_argument("--reps", type=int, default=10)
    h = sub.add_parser("http", help="latency and throughput of genadapt-serve")
    h.add_argument("--url", help="a running service (default: start one on loopback)")
    h.add_argument("--model", type=Path, help="model for the started service")
    h.add_argument("--size", default="1024x512")
    h.add_argument("--width", type=float, default=1.0)
    h.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    h.add_argument("--requests", type=int, default=32)
    e = sub.add_parser("eval", help="evaluation throughput on 2048×1024 labelled images")
    e.add_argument("--model", type=Path, help="a checkpoint (default: random F+C)")
    e.add_argument("--size", default="1024x512")
    e.add_argument("--width", type=float, default=1.0)
    e.add_argument("--images", type=int, default=8)
    e.add_argument("--workers", type=int, default=2, help="data loading processes")
    e.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime")
    s = sub.add_parser("suite", help="all three, sized for this machine (GPU: the paper's sizes)")
    g = sub.add_parser("gpu-check", help="every GPU path once: PASS/FAIL lines, log, archive")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--budget-s", type=float, default=480, help="checks left after this: SKIP")
    for sp in (t, pl, h, e, s, g):
        sp.add_argument("--device", default="auto")
        sp.add_argument("--quick", action="store_true", help="tiny sizes, under a minute on a CPU")
    for sp in (t, pl, h, e):
        sp.add_argument("--out", type=Path, required=True)
    s.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    return p


def cli(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    commands = {
        "table3": cmd_table3,
        "pipeline": cmd_pipeline,
        "http": cmd_http,
        "eval": cmd_eval,
        "suite": cmd_suite,
        "gpu-check": cmd_gpu_check,
    }
    return run_cli(f"genadapt-bench {args.command}", lambda: commands[args.command](args) and 0)


if __name__ == "__main__":
    sys.exit(cli())
