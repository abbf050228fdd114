"""The built-in benchmarks: Table 3, the host pipeline, HTTP, evaluation throughput, the suite
that runs them sized for this machine, and the GPU check with its report. Each is a `Benchmark`
(registry.py): its arguments, and a run that writes its reports."""

from __future__ import annotations

import argparse
import json
import logging
import tarfile
import tempfile
from pathlib import Path

from genadapt.benchmarks.common import (
    HOST_BACKENDS,
    INT8,
    PAPER_SIZES,
    QUICK_SIZE,
    QUICK_WIDTH,
    Reports,
    checkpoint_of,
    parse_size,
    random_checkpoint,
    resolve_device,
)
from genadapt.benchmarks.eval_bench import run_eval
from genadapt.benchmarks.http_bench import run_http
from genadapt.benchmarks.int8 import write_int8_model
from genadapt.benchmarks.pipeline import run_pipeline, sample_jpeg
from genadapt.benchmarks.registry import Benchmark, add_device_and_quick
from genadapt.benchmarks.report import (
    eval_markdown,
    http_markdown,
    pipeline_markdown,
    table3_chart,
    table3_markdown,
)
from genadapt.benchmarks.server import serving
from genadapt.benchmarks.table3 import BenchConfig, run_table3
from genadapt.benchmarks.timing import device_name, results_folder_name, watching_the_machine
from genadapt.checkpoint import Checkpoint, save_checkpoint
from genadapt.errors import GenadaptError

log = logging.getLogger(__name__)


def bench_table3(cfg: BenchConfig, reports: Reports) -> dict:
    results = run_table3(cfg)
    reports.write("table3", results, table3_markdown(results))
    table3_chart(results, reports.out / "table3.png")
    return results


def bench_pipeline(checkpoint: Checkpoint, device: str, reps: int, reports: Reports) -> dict:
    cuda = device.startswith("cuda")
    backends = [b for b in HOST_BACKENDS if not (cuda and b == INT8)]  # INT8 ONNX is for CPUs
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


def cmd_table3(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
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
            turns=2,
        )
    else:
        cfg = BenchConfig(
            [parse_size(s) for s in args.sizes] if args.sizes else PAPER_SIZES,
            width=args.width,
            train_width=args.train_width or (1.0 if device.startswith("cuda") else 0.25),
            padding=args.padding,
            batches=tuple(args.batches),
            reps=args.reps,
            train_reps=args.train_reps,
            budget_s=args.budget_s,
            device=device,
            turns=args.turns,
        )
    return bench_table3(cfg, Reports(args.out))


def cmd_pipeline(args: argparse.Namespace) -> dict:
    reps = 3 if args.quick else args.reps
    return bench_pipeline(checkpoint_of(args), resolve_device(args.device), reps, Reports(args.out))


def cmd_http(args: argparse.Namespace) -> dict:
    model = args.model or checkpoint_of(args)
    concurrency = [1, 2] if args.quick else args.concurrency
    requests = 6 if args.quick else args.requests
    return bench_http(
        model, resolve_device(args.device), concurrency, requests, Reports(args.out), args.url
    )


def cmd_eval(args: argparse.Namespace) -> dict:
    count, label_size = (2, (256, 128)) if args.quick else (args.images, (2048, 1024))
    return bench_eval(
        checkpoint_of(args),
        resolve_device(args.device),
        args.backend,
        count,
        label_size,
        args.workers,
        Reports(args.out),
    )


def cmd_suite(args: argparse.Namespace) -> dict:
    """Every benchmark, sized to finish within about 8 minutes on this machine."""
    device = resolve_device(args.device)
    reports = Reports(args.out / results_folder_name(device_name(device)))
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
        turns=2 if args.quick else 5,
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
            checkpoint, device, INT8, 4, label_size, 2, reports, name="eval-int8"
        )
    log.info("suite results in %s", reports.out)
    return results


def cmd_gpu_check(args: argparse.Namespace) -> dict:
    from genadapt.benchmarks.gpu_check import run_gpu_check

    sizes = [parse_size(s) for s in args.sizes] if args.sizes else None
    results = run_gpu_check(
        args.out, resolve_device(args.device), args.quick, args.budget_s, args.only, sizes
    )
    failed = [name for name, c in results["checks"].items() if c["status"] != "PASS"]
    if failed:
        raise GenadaptError(f"gpu-check: not passed: {', '.join(failed)} (see {args.out})")
    return results


def table3_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", nargs="+", help="WxH (default: the paper's three sizes)")
    p.add_argument("--width", type=float, default=1.0, help="F+C width for evaluation")
    p.add_argument("--train-width", type=float, default=None, help="default 1.0 (GPU), 0.25 (CPU)")
    p.add_argument("--padding", choices=("pad1", "pad100"), default="pad1")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--train-reps", type=int, default=10)
    p.add_argument("--budget-s", type=float, default=20.0, help="time cap per measurement")
    p.add_argument(
        "--turns",
        type=int,
        default=5,
        help="CPU: rounds of PyTorch eager and the fastest backend timed taking turns, for the "
        "CPU target's ratio (the rows are timed one after the other)",
    )
    add_device_and_quick(p)
    p.add_argument("--out", type=Path, required=True)


def _model_arguments(p: argparse.ArgumentParser, model_help: str) -> None:
    p.add_argument("--model", type=Path, help=model_help)
    p.add_argument("--size", default="1024x512")
    p.add_argument("--width", type=float, default=1.0)


def pipeline_arguments(p: argparse.ArgumentParser) -> None:
    _model_arguments(p, "a checkpoint (default: random F+C)")
    p.add_argument("--reps", type=int, default=10)
    add_device_and_quick(p)
    p.add_argument("--out", type=Path, required=True)


def http_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="a running service (default: start one on loopback)")
    _model_arguments(p, "model for the started service")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--requests", type=int, default=32)
    add_device_and_quick(p)
    p.add_argument("--out", type=Path, required=True)


def eval_arguments(p: argparse.ArgumentParser) -> None:
    _model_arguments(p, "a checkpoint (default: random F+C)")
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="data loading processes")
    p.add_argument("--backend", choices=HOST_BACKENDS, default="onnxruntime")
    add_device_and_quick(p)
    p.add_argument("--out", type=Path, required=True)


def suite_arguments(p: argparse.ArgumentParser) -> None:
    add_device_and_quick(p)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))


def gpu_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget-s", type=float, default=480, help="checks left after this: SKIP")
    p.add_argument("--only", nargs="+", metavar="CHECK", help="run these checks alone (a rerun)")
    p.add_argument(
        "--sizes", nargs="+", metavar="WxH", help="Table 3's sizes (default: the paper's)"
    )
    add_device_and_quick(p)


def gpu_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("archives", type=Path, nargs="+", help="gpu-check.tar.gz, first run first")
    p.add_argument("--out", type=Path, required=True, help="benchmarks/results/<gpu>")


BENCHMARKS = [
    Benchmark("table3", "train s/iter and eval s/image beside the paper's Table 3",
              table3_arguments, cmd_table3),
    Benchmark("pipeline", "2048×1024 JPEG on the host → label map on the host",
              pipeline_arguments, cmd_pipeline),
    Benchmark("http", "latency and throughput of genadapt-serve", http_arguments, cmd_http),
    Benchmark("eval", "evaluation throughput on 2048×1024 labelled images",
              eval_arguments, cmd_eval),
    Benchmark("suite", "all of them, sized for this machine (GPU: paper sizes)",
              suite_arguments, cmd_suite),
    Benchmark("gpu-check", "every GPU path once: PASS/FAIL lines, log, archive",
              gpu_check_arguments, cmd_gpu_check),
    Benchmark("gpu-report", "a GPU check's archives → a results folder",
              gpu_report_arguments, cmd_gpu_report),
]  # fmt: skip
