"""`genadapt-bench`: table3 | pipeline | http | eval | suite | gpu-check.

    genadapt-bench table3 [--sizes 512x256 640x320 1024x512] [--width 1.0] [--quick] --out DIR
    genadapt-bench pipeline [--model CKPT] [--quick] --out DIR
    genadapt-bench http [--url URL | --model MODEL] [--concurrency 1 2 4 8] --out DIR
    genadapt-bench eval [--model CKPT] [--images 8] --out DIR   # evaluation throughput
    genadapt-bench suite [--out benchmarks/results]   # all of them, sized for this machine
    genadapt-bench gpu-check --out DIR   # every GPU path, PASS/FAIL each (benchmarks/gpu_check.sh)

Results are JSON plus Markdown (and a PNG chart for table3) in --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from genadapt.benchmarks.eval_bench import run_eval
from genadapt.benchmarks.http_bench import run_http
from genadapt.benchmarks.int8 import write_int8_model
from genadapt.benchmarks.pipeline import run_pipeline, sample_jpeg
from genadapt.benchmarks.report import (
    eval_markdown,
    http_markdown,
    pipeline_markdown,
    table3_chart,
    table3_markdown,
)
from genadapt.benchmarks.server import serving
from genadapt.benchmarks.table3 import BenchConfig, run_table3
from genadapt.benchmarks.timing import device_name, watching_the_machine
from genadapt.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from genadapt.cli import run_cli, setup_logging
from genadapt.errors import GenadaptError
from genadapt.fileio import atomic_write_bytes
from genadapt.labels import CITYSCAPES19
from genadapt.model import ModelConfig, build_model
from genadapt.provenance import footnote, provenance

log = logging.getLogger(__name__)
PAPER_SIZES = [(512, 256), (640, 320), (1024, 512)]
QUICK_SIZE, QUICK_WIDTH = (128, 64), 0.125  # --quick: well under a minute on 2 CPU cores


@dataclass
class Reports:
    """Where a benchmark's JSON and Markdown go."""

    out: Path

    def write(self, name: str, data: dict, markdown: str) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        # A measurement made elsewhere (a GPU check's archive) keeps the record it came with.
        data = {**data, "provenance": data.get("provenance") or provenance()}
        atomic_write_bytes(self.out / f"{name}.json", json.dumps(data, indent=2).encode())
        markdown = f"{markdown.rstrip()}\n\n{footnote(data['provenance'])}\n"
        atomic_write_bytes(self.out / f"{name}.md", markdown.encode())
        print(markdown)
        return data


def random_checkpoint(size: tuple[int, int], width: float) -> Checkpoint:
    """F+C with random weights: timings do not depend on what the weights are."""
    return Checkpoint.from_model(build_model(ModelConfig(19, width, "pad1")), CITYSCAPES19, size)


def bench_table3(cfg: BenchConfig, reports: Reports) -> dict:
    results = run_table3(cfg)
    reports.write("table3", results, table3_markdown(results))
    table3_chart(results, reports.out / "table3.png")
    return results


def bench_pipeline(checkpoint: Checkpoint, device: str, reps: int, reports: Reports) -> dict:
    backends = ["torch", "onnxruntime"] + (
        [] if device.startswith("cuda") else ["onnxruntime-int8"]
    )
    results = run_pipeline(checkpoint, backends, reps, device)
    return reports.write("pipeline", results, pipeline_markdown(results))


def bench_http(
    model: Path | Checkpoint,
    device: str,
    concurrency: list[int],
    requests: int,
    reports: Reports,
    url: str | None = None,
    name: str = "http",
) -> dict:
    """Against `url`, or against a loopback service started on `model` for the measurement."""
    body = sample_jpeg()
    if url is not None:  # a server elsewhere: its CPU, if on this machine, counts as others'
        with watching_the_machine() as machine:
            results = run_http(url, body, concurrency, requests)
    else:
        with tempfile.TemporaryDirectory(prefix="genadapt-bench-") as tmp:
            if isinstance(model, Checkpoint):
                model = save_checkpoint(model, Path(tmp) / "model.pt")
            with serving(model, device) as server, watching_the_machine([server.pid]) as machine:
                results = run_http(server.url, body, concurrency, requests)
    results["machine"] = machine
    return reports.write(name, results, http_markdown(results))


def bench_eval(
    checkpoint: Checkpoint,
    device: str,
    backend: str,
    images: int,
    label_size: tuple[int, int],
    workers: int,
    reports: Reports,
    name: str = "eval",
) -> dict:
    results = run_eval(checkpoint, device, backend, images, label_size, workers)
    return reports.write(name, results, eval_markdown(results))


def cmd_gpu_report(args: argparse.Namespace) -> dict:
    """The reports of a GPU check's archives (a rerun's after the first run's, so that a
    rerun's reports replace the first's) as JSON, Markdown and the chart, in one folder."""
    from genadapt.benchmarks.targets import assess_targets, targets_markdown

    reports = Reports(args.out)
    found: dict[str, dict] = {}
    checks: dict = {}
    for archive_path in args.archives:
        with tarfile.open(archive_path) as archive:
            for member in archive.getmembers():
                stream = archive.extractfile(member) if member.isfile() else None
                name = Path(member.name).name
                if stream is None or not name.endswith(".json") or name == "targets.json":
                    continue
                data = json.loads(stream.read())
                if name == "checks.json":  # merged: a rerun's checks replace the first run's
                    checks = {**checks, **data, "checks": checks.get("checks", {}) | data["checks"]}
                elif name == "table3.json":  # merged by size, each size saying where it is from
                    for entry in data["sizes"]:
                        entry["archive"] = archive_path.name
                    earlier = found.get("table3", {"sizes": []})["sizes"]
                    sizes = {tuple(e["size"]): e for e in earlier + data["sizes"]}
                    found["table3"] = data | {"sizes": [sizes[k] for k in sorted(sizes)]}
                else:
                    found[name.removesuffix(".json")] = data
    if not checks:
        raise GenadaptError(f"no checks.json in {[str(a) for a in args.archives]}")
    writers = {
        "table3": table3_markdown,
        "pipeline": pipeline_markdown,
        "http": http_markdown,
        "eval": eval_markdown,
    }
    for name, data in found.items():
        markdown = writers[name](data) if name in writers else f"```json\n{json.dumps(data)}\n```\n"
        reports.write(name, data, markdown)
    reports.write("checks", checks, _checks_markdown(checks))
    if "table3" in found:
        table3_chart(found["table3"], reports.out / "table3.png")
    targets = assess_targets(reports.out)
    return reports.write("targets", targets, "# GPU targets\n\n" + targets_markdown(targets))


def _checks_markdown(checks: dict) -> str:
    env = checks.get("environment", {})
    lines = [f"# GPU check on {env.get('device', '?')}", "", "| check | status | seconds |"]
    lines.append("|---|---|---|")
    for name, check in checks["checks"].items():
        lines.append(f"| {name} | {check['status']} | {check.get('seconds', '–')} |")
    return "\n".join(lines) + "\n"


# ---- the command line --------------------------------------------------------------------
def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def _device(arg: str) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if arg == "auto" else arg


def _checkpoint(args: argparse.Namespace) -> Checkpoint:
    if getattr(args, "model", None):
        return load_checkpoint(args.model)
    if args.quick:
        return random_checkpoint(QUICK_SIZE, QUICK_WIDTH)
    return random_checkpoint(_size(args.size), args.width)


def cmd_table3(args: argparse.Namespace) -> dict:
    device = _device(args.device)
    if args.quick:
        cfg = BenchConfig(
            [QUICK_SIZE],
            width=QUICK_WIDTH,
            train_width=QUICK_WIDTH,
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
            train_width=args.train_width or (1.0 if device.startswith("cuda") else 0.25),
            padding=args.padding,
            batches=tuple(args.batches),
            reps=args.reps,
            train_reps=args.train_reps,
            budget_s=args.budget_s,
            device=device,
        )
    return bench_table3(cfg, Reports(args.out))


def cmd_pipeline(args: argparse.Namespace) -> dict:
    reps = 3 if args.quick else args.reps
    return bench_pipeline(_checkpoint(args), _device(args.device), reps, Reports(args.out))


def cmd_http(args: argparse.Namespace) -> dict:
    model = args.model or _checkpoint(args)
    concurrency = [1, 2] if args.quick else args.concurrency
    requests = 6 if args.quick else args.requests
    return bench_http(
        model, _device(args.device), concurrency, requests, Reports(args.out), args.url
    )


def cmd_eval(args: argparse.Namespace) -> dict:
    count, label_size = (2, (256, 128)) if args.quick else (args.images, (2048, 1024))
    return bench_eval(
        _checkpoint(args),
        _device(args.device),
        args.backend,
        count,
        label_size,
        args.workers,
        Reports(args.out),
    )


def cmd_suite(args: argparse.Namespace) -> dict:
    """Every benchmark, sized to finish within about 8 minutes on this machine."""
    device = _device(args.device)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device_name(device)).strip("-").lower()
    reports = Reports(args.out / slug)
    cuda = device.startswith("cuda")
    if args.quick:
        size, width = QUICK_SIZE, QUICK_WIDTH
    else:
        size, width = (1024, 512), 1.0
    checkpoint = random_checkpoint(size, width)
    cfg = BenchConfig(
        [size] if args.quick else (PAPER_SIZES if cuda else [(512, 256), (1024, 512)]),
        width=width,
        train_width=width if args.quick or cuda else 0.25,
        batches=(1, 4) if cuda else (1,),
        warmup=1 if args.quick else 3,
        reps=30 if cuda else 3,
        train_reps=10 if cuda else (2 if args.quick else 3),
        budget_s=15 if cuda else 40,
        device=device,
    )
    results = {"table3": bench_table3(cfg, reports)}
    results["pipeline"] = bench_pipeline(checkpoint, device, 10 if cuda else 3, reports)
    levels, requests = ([1, 2, 4, 8], 32) if cuda else ([1, 2], 6)
    results["http"] = bench_http(checkpoint, device, levels, requests, reports)
    if not cuda:  # the same service on the INT8 graph
        with tempfile.TemporaryDirectory(prefix="genadapt-bench-int8-") as tmp:
            model = write_int8_model(checkpoint, Path(tmp))
            results["http-int8"] = bench_http(
                model, device, levels, requests, reports, name="http-int8"
            )
    label_size = (256, 128) if args.quick else (2048, 1024)
    results["eval"] = bench_eval(
        checkpoint, device, "onnxruntime", 32 if cuda else 4, label_size, 2, reports
    )
    if not cuda:
        results["eval-int8"] = bench_eval(
            checkpoint, device, "onnxruntime-int8", 4, label_size, 2, reports, name="eval-int8"
        )
    log.info("suite results in %s", reports.out)
    return results


def cmd_loader(args: argparse.Namespace) -> dict:
    from genadapt.benchmarks.loader_bench import loader_markdown, run_loader

    if args.quick:  # small frames: the path, not the numbers
        results = run_loader([0, 1], frames=3, steps=3, scale=0.125)
    else:
        results = run_loader(args.workers, args.frames, args.steps, args.iteration_ms)
    return Reports(args.out).write("loader", results, loader_markdown(results))


def cmd_int8_accuracy(args: argparse.Namespace) -> dict:
    from genadapt.benchmarks.int8_accuracy import int8_accuracy_markdown, run_int8_accuracy

    results = run_int8_accuracy(args.checkpoints, args.dataset, args.root, args.split)
    return Reports(args.out).write("int8-accuracy", results, int8_accuracy_markdown(results))


def cmd_gpu_check(args: argparse.Namespace) -> dict:
    from genadapt.benchmarks.gpu_check import run_gpu_check

    sizes = [_size(s) for s in args.sizes] if args.sizes else None
    results = run_gpu_check(
        args.out, _device(args.device), args.quick, args.budget_s, args.only, sizes
    )
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
    e.add_argument(
        "--backend", choices=("onnxruntime", "onnxruntime-int8", "torch"), default="onnxruntime"
    )
    lo = sub.add_parser("loader", help="the training loader on full-size frames vs an iteration")
    lo.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    lo.add_argument("--frames", type=int, default=12, help="generated frames per domain")
    lo.add_argument("--steps", type=int, default=24, help="iterations timed per setting")
    lo.add_argument(
        "--iteration-ms", type=float, default=94.0, help="the iteration to feed (H200 paper: 94)"
    )
    lo.add_argument("--quick", action="store_true", help="small frames, seconds on a CPU")
    lo.add_argument("--out", type=Path, required=True)
    ia = sub.add_parser("int8-accuracy", help="mIoU of trained models in fp32 and INT8")
    ia.add_argument("checkpoints", type=Path, nargs="+", help="trained checkpoint.pt files")
    ia.add_argument("--dataset", default="cityscapes", help="dataset kind (default cityscapes)")
    ia.add_argument("--root", type=Path, required=True, help="the labelled dataset folder")
    ia.add_argument("--split", default=None, help="default: the kind's (cityscapes: val)")
    ia.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("suite", help="all of them, sized for this machine (GPU: paper sizes)")
    g = sub.add_parser("gpu-check", help="every GPU path once: PASS/FAIL lines, log, archive")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--budget-s", type=float, default=480, help="checks left after this: SKIP")
    g.add_argument("--only", nargs="+", metavar="CHECK", help="run these checks alone (a rerun)")
    g.add_argument(
        "--sizes", nargs="+", metavar="WxH", help="Table 3's sizes (default: the paper's)"
    )
    r = sub.add_parser("gpu-report", help="a GPU check's archives → a results folder")
    r.add_argument("archives", type=Path, nargs="+", help="gpu-check.tar.gz, first run first")
    r.add_argument("--out", type=Path, required=True, help="benchmarks/results/<gpu>")
    for sp in (t, pl, h, e, s, g):
        sp.add_argument("--device", default="auto")
        sp.add_argument("--quick", action="store_true", help="tiny sizes, under a minute on a CPU")
    for sp in (t, pl, h, e):
        sp.add_argument("--out", type=Path, required=True)
    s.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    return p


COMMANDS = {
    "table3": cmd_table3,
    "pipeline": cmd_pipeline,
    "http": cmd_http,
    "eval": cmd_eval,
    "suite": cmd_suite,
    "loader": cmd_loader,
    "int8-accuracy": cmd_int8_accuracy,
    "gpu-check": cmd_gpu_check,
    "gpu-report": cmd_gpu_report,
}


def cli(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_cli(
        f"genadapt-bench {args.command}", lambda: COMMANDS[args.command](args) and 0, argv
    )


if __name__ == "__main__":
    sys.exit(cli())
