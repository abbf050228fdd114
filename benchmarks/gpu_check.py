"""`genadapt-bench gpu-check`: every GPU path once, on one machine, in one command.

Each check prints its own PASS / FAIL / SKIP line and the run goes on past a failure, so that one
short session on a CUDA machine answers every question at once. Everything lands in one folder:
a log, a `checks.json` and `gpu-check.tar.gz` with the benchmark reports.
`benchmarks/gpu_check.sh` installs what a stock CUDA PyTorch image lacks and runs this. With
`--device cpu --quick` the same checks run at tiny sizes on a CPU, which the test suite does so
that this cannot rot between GPU runs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genadapt.benchmarks.eval_bench import run_eval
from genadapt.benchmarks.http_bench import run_http
from genadapt.benchmarks.pipeline import run_pipeline, sample_jpeg
from genadapt.benchmarks.server import serving
from genadapt.benchmarks.table3 import BenchConfig, run_table3, train_iteration
from genadapt.benchmarks.targets import assess_targets, targets_markdown
from genadapt.benchmarks.timing import environment
from genadapt.checkpoint import Checkpoint, save_checkpoint
from genadapt.errors import GenadaptError
from genadapt.imaging import logits_to_labels, network_input, normalize_batch
from genadapt.labels import CITYSCAPES19
from genadapt.model import ModelConfig, build_model
from genadapt.onnx_graph import export_graph
from genadapt.provenance import provenance
from genadapt.runtime import TorchSegmenter
from genadapt.runtime.ort_providers import choose_providers, import_onnxruntime
from genadapt.scenes.generate import generate_scenes

log = logging.getLogger(__name__)
AGREEMENT = 0.995  # labels of a GPU path against CPU fp32 (the target: ≥ 99.5% of pixels)


@dataclass
class CheckPlan:
    """Sizes and repetitions: the paper's sizes on a GPU, tiny ones for the CPU self-test."""

    device: str
    size: tuple[int, int]
    width: float
    sizes: list[tuple[int, int]]
    images: int
    train_iterations: int
    reps: int
    http_requests: int
    concurrency: list[int]
    train_reps: int = 10
    warmup: int = 3
    budget_s: float = 15  # per timed measurement

    @classmethod
    def for_device(cls, device: str, quick: bool) -> CheckPlan:
        if quick:
            return cls(device, (64, 32), 0.0625, [(64, 32)], 2, 4, 3, 4, [1, 2], 2, 1, 2)
        paper_sizes = [(512, 256), (640, 320), (1024, 512)]
        return cls(device, (1024, 512), 1.0, paper_sizes, 4, 30, 30, 96, [1, 16], budget_s=4)


def trained_like(width: float, size: tuple[int, int], padding: str = "pad1") -> Checkpoint:
    """Random F+C with non-zero score layers: the labels vary per pixel (an untrained FCN's
    zero-initialized head would tie every class and make agreement meaningless)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=19, width=width, padding=padding))
    with torch.no_grad():
        for score in (model.score_fr, model.score_pool4, model.score_pool3):
            score.weight.normal_(0, 0.05 / math.sqrt(width))
    return Checkpoint.from_model(model, CITYSCAPES19, size)


def scenes(folder: Path, count: int, size: tuple[int, int]) -> np.ndarray:
    """Rendered target-look street scenes at the network size, as a uint8 batch."""
    generate_scenes(folder, size, source=0, target_train=0, target_val=count, unseen=0, workers=1)
    paths = sorted((folder / "target" / "leftImg8bit" / "val").rglob("*.png"))[:count]
    return np.stack([network_input(p.read_bytes(), size) for p in paths])


def check_torch(plan: CheckPlan, ckpt: Checkpoint, images: np.ndarray) -> dict:
    """PyTorch on the device (fp16, channels_last, CUDA graph on a GPU) against CPU fp32."""
    reference = TorchSegmenter.from_checkpoint(ckpt, "cpu")
    expected = reference.run(images, reference.spec.output_size)
    segmenter = TorchSegmenter.from_checkpoint(ckpt, plan.device)
    got = np.concatenate(
        [segmenter.run(images[i : i + 1], segmenter.spec.output_size) for i in range(len(images))]
    )
    agreement = float((got == expected).mean())
    # Full-size frames resized on the device (antialiased bilinear) against Pillow's resize on
    # the CPU: reported, not gated, since two resamplers round differently.
    frames = [np.repeat(np.repeat(image, 2, axis=0), 2, axis=1) for image in images]
    on_cpu = reference.segment(frames)
    full = np.concatenate([segmenter.segment([frame]) for frame in frames])
    return {
        "passed": agreement >= AGREEMENT,
        "label_agreement": round(agreement, 6),
        "device_resize_agreement": round(float((full == on_cpu).mean()), 6),
        "segmenter": segmenter.describe(),
    }


def check_onnxruntime(plan: CheckPlan, ckpt: Checkpoint, images: np.ndarray) -> dict:
    """The labels graph on ONNX Runtime's CUDA provider with IO binding against its CPU run."""
    ort = import_onnxruntime()
    data = export_graph(ckpt.build_model(), "labels", ckpt.spec).data
    cpu = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    expected = cpu.run(None, {"image": images})[0]
    ort_device = "cuda" if plan.device == "cuda" else "cpu"
    # fp32 as labelled: TF32 off (the CUDA provider's default is on).
    providers = choose_providers(ort_device, ort.get_available_providers(), tf32=False)
    session = ort.InferenceSession(data, providers=providers)
    binding = session.io_binding()
    binding.bind_cpu_input("image", images)
    binding.bind_output("labels", ort_device)
    session.run_with_iobinding(binding)
    got = binding.copy_outputs_to_cpu()[0]
    agreement = float((got == expected).mean())
    result = {
        "passed": agreement >= AGREEMENT,
        "label_agreement": round(agreement, 6),
        "precision": "fp32 (TF32 off)" if ort_device == "cuda" else "fp32",
        "providers": session.get_providers(),
    }
    if ort_device == "cuda":  # the fp16 logits graph, channels-last, as table3 times it
        result |= _fp16_agreement(ort, ckpt, images, expected)
        result["passed"] = (
            result["passed"]
            and result["fp16_label_agreement"] >= AGREEMENT
            and not result["ort_memcpy_nodes"]  # a copy per run inside the graph: a fallback
        )
    return result


def _fp16_agreement(ort, ckpt: Checkpoint, images: np.ndarray, expected: np.ndarray) -> dict:
    """The fp16 graph's labels, and where its time goes: the first GPU run found it slower
    than fp32 on the CUDA provider, so its node profile travels back with the reports."""
    graph = export_graph(ckpt.build_model().to("cuda"), "logits", ckpt.spec, fp16=True)
    # The settings of Table 3's "fp16+nhwc" row, so that agreement and timing are one path.
    providers = choose_providers("cuda", ort.get_available_providers(), tf32=None, nhwc=True)
    x = normalize_batch(images, ckpt.spec.normalization).astype(np.float16)
    logits, profile = profiled_run(ort, graph.data, providers, {"input": x})
    labels = logits_to_labels(torch.from_numpy(logits).float(), ckpt.spec.output_size).numpy()
    return {"fp16_label_agreement": round(float((labels == expected).mean()), 6)} | profile


def profiled_run(
    ort, data: bytes, providers: list, feed: dict, runs: int = 5, warmup: int = 2
) -> tuple:
    """Run a graph `warmup` + `runs` times in one session with ONNX Runtime's profiler on;
    return the first output, the time per (operator, execution provider) over the timed runs
    only (the first runs pick kernels and allocate: not what a served request pays), the
    heaviest first, and the Memcpy nodes ONNX Runtime put into the optimized graph."""
    options = ort.SessionOptions()
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="genadapt-ort-profile-") as tmp:
        options.profile_file_prefix = str(Path(tmp) / "ort")
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        session = ort.InferenceSession(data, options, providers=providers)
        output = session.run(None, feed)[0]
        for _ in range(warmup - 1 + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
        copies = memcpy_nodes(Path(options.optimized_model_filepath).read_bytes())
    return output, {
        "ort_ms_per_run_by_op": ops_after_warmup(events, warmup, runs),
        "ort_memcpy_nodes": copies,
    }


def ops_after_warmup(events: list[dict], warmup: int, runs: int) -> dict[str, float]:
    """ms per run by (operator, provider) from an ONNX Runtime profile, counting only the node
    events of the runs after the first `warmup` ones (each run is a Session `model_run`)."""
    starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    cutoff = starts[warmup] if len(starts) > warmup else float("inf")
    per_op: dict[str, float] = {}
    for event in events:
        args = event.get("args", {})
        timed = event.get("ts", 0) >= cutoff
        if timed and event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            key = f"{args.get('op_name', '?')} on {args.get('provider', '?')}"
            per_op[key] = per_op.get(key, 0.0) + event.get("dur", 0) / 1000 / runs
    heaviest = sorted(per_op.items(), key=lambda kv: -kv[1])[:12]
    return {k: round(v, 3) for k, v in heaviest}


def memcpy_nodes(model: bytes) -> list[str]:
    """The names of the copies between host and device in an (optimized) ONNX graph. Every
    input and output of genadapt's graphs lives where the session runs, so any such node is a
    layout or provider fallback that costs a round trip per run: the GPU check fails on it."""
    import onnx

    graph = onnx.load_from_string(model).graph
    return [f"{n.op_type}:{n.name}" for n in graph.node if n.op_type.startswith("Memcpy")]


def check_training(plan: CheckPlan) -> dict:
    """The full D → G → F/C iteration in bf16 autocast on one fixed batch: every loss finite,
    and F's segmentation loss falling (it overfits the batch)."""
    from genadapt.trainer.adapter import Adapter, Batch
    from genadapt.trainer.config import resolve_config

    device = torch.device(plan.device)
    w, h = (512, 256) if plan.device == "cuda" else plan.size
    width = 0.25 if plan.device == "cuda" else plan.width
    config = resolve_config("paper-fast", overrides={"width": width, "size": (w, h), "lr_fc": 1e-4})
    adapter = Adapter(build_model(ModelConfig(19, width, "pad1")), config).to(device).train()
    g = torch.Generator().manual_seed(0)
    xs01, xt01 = (torch.rand(1, 3, h, w, generator=g).to(device) for _ in range(2))
    ys = torch.randint(0, 19, (1, h // 16, w // 16), generator=g).to(torch.uint8)
    ys = torch.nn.functional.interpolate(ys[None].float(), (h, w))[0].to(torch.uint8).to(device)
    batch = Batch(xs=xs01 * 4 - 2, ys=ys, xs01=xs01, xt=xt01 * 4 - 2, xt01=xt01)
    history: list[dict[str, float]] = []
    for _ in range(plan.train_iterations):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            losses = adapter.iteration(batch)
        history.append({k: float(v) for k, v in losses.items()})
    finite = all(math.isfinite(v) for step in history for v in step.values())
    first, last = history[0]["f_seg"], history[-1]["f_seg"]
    return {
        "passed": finite and last < first,
        "iterations": len(history),
        "f_seg_first": round(first, 4),
        "f_seg_last": round(last, 4),
        "losses_last": {k: round(v, 4) for k, v in history[-1].items()},
    }


def check_table3(plan: CheckPlan, out: Path) -> dict:
    cfg = BenchConfig(
        plan.sizes,
        width=plan.width,
        train_width=plan.width,
        batches=(1, 4),
        warmup=plan.warmup,
        reps=plan.reps,
        train_reps=plan.train_reps,
        budget_s=plan.budget_s,
        device=plan.device,
    )
    results = run_table3(cfg)
    _save(out, "table3", results)
    rows = [r for e in results["sizes"] for r in e["eval"] if "skipped" not in r]
    return {"passed": bool(rows), "measured_rows": len(rows)}


def check_pipeline(plan: CheckPlan, ckpt: Checkpoint, out: Path) -> dict:
    results = run_pipeline(ckpt, ["torch", "onnxruntime"], plan.reps, plan.device)
    _save(out, "pipeline", results)
    measured = [b for b, stages in results["backends"].items() if "skipped" not in stages]
    return {
        "passed": bool(measured),
        "measured": measured,
        "total_p50_ms": {b: results["backends"][b]["total"]["p50_ms"] for b in measured},
    }


def check_service(plan: CheckPlan, ckpt: Checkpoint, out: Path) -> dict:
    model = save_checkpoint(ckpt, out / "service-model.pt")
    try:
        with serving(model, plan.device, max_batch=max(plan.concurrency)) as server:
            results = run_http(server.url, sample_jpeg(), plan.concurrency, plan.http_requests)
    finally:
        model.unlink(missing_ok=True)
    _save(out, "http", results)
    levels = results["levels"]
    ok = all(level["errors"] == 0 for level in levels)
    summary = [
        {
            "concurrency": level["concurrency"],
            "p50_ms": level["latency"]["p50_ms"],
            "requests_per_s": level["throughput_rps"],
            "errors": level["errors"],
        }
        for level in levels
    ]
    return {"passed": ok, "levels": summary}


def check_eval(plan: CheckPlan, ckpt: Checkpoint, out: Path) -> dict:
    """genadapt-eval's loop on full-resolution labelled scenes, on the device."""
    images, label_size = (8, (2048, 1024)) if plan.device == "cuda" else (2, (128, 64))
    results = run_eval(
        ckpt, plan.device, "torch", images, label_size, workers=min(4, os.cpu_count() or 1)
    )
    _save(out, "eval", results)
    return {
        "passed": results["images"] == images,
        "images_per_s": results["images_per_s"],
        "seconds": results["seconds"],
    }


def check_paper_iteration(plan: CheckPlan) -> dict:
    """The `paper` preset's iteration at 1024×512 (full width on a GPU): time and peak memory
    at pad1 and pad100, in fp32 (the authors' precision, the preset's default) and in bf16
    autocast. The check's own figures are pad100 in bf16, the row its target is about."""
    size = (1024, 512) if plan.device == "cuda" else plan.size
    rows = {}
    for padding in ("pad1", "pad100"):
        cfg = BenchConfig(
            [size],
            width=plan.width,
            train_width=plan.width,
            padding=padding,
            warmup=plan.warmup,
            train_reps=plan.train_reps,
            budget_s=plan.budget_s,
            device=plan.device,
        )
        for amp in ("off", "bf16"):
            rows[f"{padding} {'bf16' if amp == 'bf16' else 'fp32'}"] = train_iteration(
                cfg, size, "full", amp
            )
    result = rows["pad100 bf16"]
    return {"passed": all(r["p50_ms"] > 0 for r in rows.values()), **result, "rows": rows}


def _save(out: Path, name: str, data: dict) -> None:
    data = {**data, "provenance": provenance()}
    (out / f"{name}.json").write_text(json.dumps(data, indent=2))


CHECKS = (
    "torch-vs-cpu",
    "onnxruntime-vs-cpu",
    "table3",
    "pipeline",
    "service",
    "paper-iteration-pad100",
    "training-bf16",
    "eval",
)  # in this order: what the targets need first, should a time limit end the run early


def run_gpu_check(
    out: Path,
    device: str,
    quick: bool,
    budget_s: float = 480,
    only: list[str] | None = None,
    sizes: list[tuple[int, int]] | None = None,
) -> dict:
    """Run every check (or those named in `only`), in order, and write the log, checks.json,
    targets.json and the archive to `out`."""
    unknown = sorted(set(only or ()) - set(CHECKS))
    if unknown:
        raise GenadaptError(f"unknown checks {unknown}; the checks are {list(CHECKS)}")
    out.mkdir(parents=True, exist_ok=True)
    reports = out / "reports"
    reports.mkdir(exist_ok=True)
    plan = CheckPlan.for_device(device, quick)
    plan.sizes = sizes or plan.sizes  # Table 3's sizes (a rerun may take the largest alone)
    started = time.perf_counter()
    results: dict = {"environment": _environment(device), "plan": vars(plan).copy(), "checks": {}}
    with _logging_to(out / "gpu-check.log"):
        ckpt = trained_like(plan.width, plan.size)
        with tempfile.TemporaryDirectory(prefix="genadapt-gpu-check-") as tmp:
            images = scenes(Path(tmp), plan.images, plan.size)
        checks: dict[str, Callable[[], dict]] = {
            "torch-vs-cpu": lambda: check_torch(plan, ckpt, images),
            "onnxruntime-vs-cpu": lambda: check_onnxruntime(plan, ckpt, images),
            "table3": lambda: check_table3(plan, reports),
            "pipeline": lambda: check_pipeline(plan, ckpt, reports),
            "service": lambda: check_service(plan, ckpt, reports),
            "paper-iteration-pad100": lambda: check_paper_iteration(plan),
            "training-bf16": lambda: check_training(plan),
            "eval": lambda: check_eval(plan, ckpt, reports),
        }
        for name in CHECKS:
            if only and name not in only:
                continue
            results["checks"][name] = _run_one(name, checks[name], started, budget_s)
            _save(out, "checks", results)
            _save(reports, "checks", results)
            _archive(out, reports)  # a time-out after this keeps every finished check
    results["seconds"] = round(time.perf_counter() - started, 1)
    _finish(out, reports, results)
    passed = sum(c["status"] == "PASS" for c in results["checks"].values())
    log.info(
        "gpu-check: %d of %d checks passed in %.0f s",
        passed,
        len(results["checks"]),
        results["seconds"],
    )
    return results


@contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """The package's log also into `path`, at INFO whatever the console shows, for the block."""
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("genadapt")
    package.addHandler(handler)
    level, package.level = package.level, logging.INFO
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
        handler.close()


def _finish(out: Path, reports: Path, results: dict) -> None:
    """checks.json and targets.json in both folders, and the archive of the reports."""
    _save(out, "checks", results)
    _save(reports, "checks", results)
    targets = assess_targets(reports)
    _save(out, "targets", targets)
    _save(reports, "targets", targets)
    log.info("targets:\n%s", targets_markdown(targets))
    _archive(out, reports)


def _archive(out: Path, reports: Path) -> None:
    """gpu-check.tar.gz of the reports so far, replaced whole (written, then renamed)."""
    partial = out / "gpu-check.tar.gz.partial"
    with tarfile.open(partial, "w:gz") as archive:
        for path in sorted(reports.glob("*.json")):
            archive.add(path, arcname=path.name)
    partial.replace(out / "gpu-check.tar.gz")


def _run_one(name: str, check: Callable[[], dict], started: float, budget_s: float) -> dict:
    if time.perf_counter() - started > budget_s:
        line = {"status": "SKIP", "reason": f"over the {budget_s:.0f} s budget"}
    else:
        t0 = time.perf_counter()
        try:
            result = check()
            line = {"status": "PASS" if result.pop("passed") else "FAIL", **result}
        except Exception as exc:  # one broken path must not hide the others
            log.error("%s raised:\n%s", name, traceback.format_exc())
            line = {"status": "FAIL", "error": f"{type(exc).__name__}: {exc}"}
        line["seconds"] = round(time.perf_counter() - t0, 1)
    detail = {k: v for k, v in line.items() if k not in ("status",)}
    log.info("%-4s %s: %s", line["status"], name, json.dumps(detail)[:400])
    return line


def _environment(device: str) -> dict:
    info = environment(device)
    try:
        ort = import_onnxruntime()
        info["onnxruntime_providers"] = ort.get_available_providers()
        info["onnxruntime_file"] = ort.__file__
    except Exception as exc:  # reported, and the ONNX Runtime check fails with the reason
        info["onnxruntime_providers"] = f"unavailable: {exc}"
    return info
