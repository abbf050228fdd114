"""`genadapt-bench table3`: the paper's Table 3 timings (train s/iter, eval s/image), measured here.

Training: one full D → G → F/C iteration and one source-only iteration at batch 1, as the
trainer runs them (bf16 autocast and channels_last on CUDA). Evaluation: the network F+C alone,
in every backend and precision available here, at batch 1 and a larger batch; backends that are
not installed are listed as skipped with the reason.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from genadapt.benchmarks.timing import (
    environment,
    peak_memory_mb,
    summarize,
    sync,
    time_calls,
    time_in_turns,
    watching_the_machine,
)
from genadapt.checkpoint import Checkpoint
from genadapt.errors import GenadaptError
from genadapt.labels import CITYSCAPES19
from genadapt.model import ModelConfig, build_model
from genadapt.onnx_graph import export_graph
from genadapt.runtime.onnx_backend import OnnxSegmenter
from genadapt.trainer.adapter import Adapter, Batch
from genadapt.trainer.config import resolve_config

log = logging.getLogger(__name__)

# The paper's Table 3 (SYNTHIA → Cityscapes): mIoU, train s/iteration, eval s/image.
PAPER = {
    (512, 256): {"source_only": 21.5, "adapted": 31.3, "train_s": 1.5, "eval_s": 0.16},
    (640, 320): {"source_only": 23.2, "adapted": 34.5, "train_s": 2.1, "eval_s": 0.19},
    (1024, 512): {"source_only": 26.8, "adapted": 36.1, "train_s": 2.9, "eval_s": 0.30},
}


@dataclass
class BenchConfig:
    sizes: list[tuple[int, int]]
    width: float = 1.0
    train_width: float = 1.0
    padding: str = "pad1"
    batches: tuple[int, ...] = (1, 4)
    warmup: int = 3
    reps: int = 30
    train_reps: int = 10
    budget_s: float = 20.0  # per measurement, so a slow CPU still finishes
    device: str = "cpu"
    turns: int = 5  # CPU: rounds of the best backend and PyTorch eager taking turns

    def __post_init__(self) -> None:
        counts = {"reps": self.reps, "train_reps": self.train_reps, "turns": self.turns}
        for name, value in counts.items():
            if value < 1:  # a median of no samples: refused here rather than deep in a row
                raise GenadaptError(f"{name} must be at least 1, got {value}")
        if self.warmup < 0:
            raise GenadaptError(f"warmup must be 0 or more, got {self.warmup}")


def gflops(width: float, padding: str, size: tuple[int, int]) -> float:
    """FLOPs of one F+C forward at batch 1, counted on meta tensors (no compute)."""
    with torch.device("meta"):
        model = build_model(ModelConfig(width=width, padding=padding)).eval()
        x = torch.empty(1, 3, size[1], size[0])
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 1e9


def train_iteration(
    cfg: BenchConfig, size: tuple[int, int], variant: str, amp: str = "bf16"
) -> dict:
    """One D → G → F/C iteration of the `paper` preset; `amp` "bf16" autocasts on CUDA, "off"
    runs fp32 (with PyTorch's default TF32 convolutions there)."""
    device = torch.device(cfg.device)
    cuda = device.type == "cuda"
    config = resolve_config(
        "paper",
        overrides={
            "variant": variant,
            "width": cfg.train_width,
            "padding": cfg.padding,
            "size": size,
        },
    )
    model = build_model(ModelConfig(19, cfg.train_width, cfg.padding))
    fmt = torch.channels_last if cuda else torch.contiguous_format
    adapter = Adapter(model, config).to(device, memory_format=fmt).train()
    g = torch.Generator().manual_seed(0)
    w, h = size
    xs01, xt01 = (torch.rand(1, 3, h, w, generator=g).to(device) for _ in range(2))
    ys = torch.randint(0, 19, (1, h, w), generator=g).to(torch.uint8).to(device)
    batch = Batch(xs=xs01 * 4 - 2, ys=ys, xs01=xs01, xt=xt01 * 4 - 2, xt01=xt01)
    bf16 = cuda and amp == "bf16"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step():
        with autocast:
            adapter.iteration(batch)

    if cuda:
        torch.backends.cudnn.benchmark = True
    with watching_the_machine() as machine:  # time_calls restarts the peak after warm-up
        samples = time_calls(step, device, cfg.warmup, cfg.train_reps, cfg.budget_s)
    return {
        **summarize(samples),
        "machine": machine,
        "peak_memory_mb": peak_memory_mb(device),
        "precision": _training_precision(cuda, bf16),
    }


def _training_precision(cuda: bool, bf16: bool) -> str:
    if bf16:
        return "bf16 autocast"
    if cuda and torch.backends.cudnn.allow_tf32:
        return "fp32, TF32 convolutions (PyTorch's default)"
    return "fp32"


def eval_backends(cfg: BenchConfig, size: tuple[int, int]) -> list[tuple[str, str, object]]:
    """(backend, precision, factory(batch) → (fn, device) or a skip reason string)."""
    cuda = cfg.device.startswith("cuda")
    checkpoint = Checkpoint.from_model(
        build_model(ModelConfig(19, cfg.width, cfg.padding)), CITYSCAPES19, size
    )
    entries: list[tuple[str, str, object]] = [("torch", "fp32", _torch(checkpoint, cfg, "fp32"))]
    no_gpu = "no CUDA GPU on this machine"
    for precision in ("tf32", "fp16", "fp16+cudagraph"):
        entries.append(("torch", precision, _torch(checkpoint, cfg, precision) if cuda else no_gpu))
    # torch.compile as TorchSegmenter runs it (--compile): default mode under genadapt's CUDA
    # graph, and max-autotune with its own. Compiling takes minutes on a CPU: GPU rows only.
    for mode in ("default", "max-autotune"):
        factory = _torch_compiled(checkpoint, cfg, mode) if cuda else no_gpu
        entries.append(("torch compile", f"fp16 {mode}", factory))
    # A CUDA run measures the GPU: a CPU row under the GPU's name would mislead.
    on_cpu = "a CPU row, skipped on a CUDA run" if cuda else _onnxruntime(checkpoint, "cpu")
    entries.append(("onnxruntime", "fp32", on_cpu))
    if not cuda:  # the labels graph (upsampling and argmax inside), fp32 and INT8 for CPUs
        for precision in ("fp32", "int8"):
            entries.append(("onnxruntime labels", precision, _labels_graph(checkpoint, precision)))
    # The CUDA provider runs TF32 unless told not to; fp16 is an fp16 graph, run channels-first
    # and channels-last (the provider's prefer_nhwc).
    for precision in ("fp32", "tf32", "fp16", "fp16+nhwc"):
        factory = _onnxruntime(checkpoint, "cuda", precision) if cuda else no_gpu
        entries.append(("onnxruntime-cuda", precision, factory))
    try:
        import tensorrt  # noqa: F401

        reason = "TensorRT timings come from genadapt-export --tensorrt engines (see README)"
    except ImportError:
        reason = "TensorRT is not installed (pip install 'genadapt[gpu]' on a CUDA machine)"
    entries.append(("tensorrt", "fp16", reason))
    return entries


def _torch(checkpoint: Checkpoint, cfg: BenchConfig, precision: str):
    def factory(batch: int):
        device = torch.device(cfg.device)
        model = checkpoint.build_model().to(device)
        x = torch.randn(
            batch, 3, checkpoint.spec.input_size[1], checkpoint.spec.input_size[0], device=device
        )
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = (
            precision == "tf32"
        )
        if precision.startswith("fp16"):
            model = model.half().to(memory_format=torch.channels_last)
            x = x.half().contiguous(memory_format=torch.channels_last)

        def forward(inp: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return model(inp)

        if precision.endswith("cudagraph"):
            forward = _graphed(forward, x)
        return (lambda: forward(x)), device, {}

    return factory


def _torch_compiled(checkpoint: Checkpoint, cfg: BenchConfig, mode: str):
    """The network through TorchSegmenter's own compiled path: fp16, channels-last, cuDNN's
    benchmark mode, `torch.compile(mode)`, and for the default mode genadapt's CUDA graph."""

    def factory(batch: int):
        from genadapt.runtime.torch_backend import TorchSegmenter

        segmenter = TorchSegmenter.from_checkpoint(checkpoint, cfg.device, compile_mode=mode)
        x = torch.randn(
            batch, 3, *reversed(checkpoint.spec.input_size), device=cfg.device
        ).half().contiguous(memory_format=torch.channels_last)  # fmt: skip

        def forward(inp: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return segmenter.network(inp)

        if segmenter.cuda_graphs:
            forward = _graphed(forward, x)
        return (lambda: forward(x)), torch.device(cfg.device), {}

    return factory


def _graphed(forward: Callable, x: torch.Tensor) -> Callable:
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            forward(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        forward(x)
    return lambda _x: graph.replay()


def _onnxruntime(checkpoint: Checkpoint, device: str, precision: str = "fp32"):
    try:
        from genadapt.runtime.ort_providers import choose_providers, import_onnxruntime

        ort = import_onnxruntime()
    except GenadaptError as exc:
        return str(exc)
    if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        return "onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu alone)"

    graph = None  # exported once, on first use, for every batch size
    fp16 = precision.startswith("fp16")

    def factory(batch: int):
        nonlocal graph
        if graph is None:  # an fp16 graph is traced on the GPU: CPU half convolutions crawl
            model = checkpoint.build_model().to(device if fp16 else "cpu")
            graph = export_graph(model, "logits", checkpoint.spec, fp16=fp16)
        data = graph.data
        before = _device_used_bytes() if device == "cuda" else 0
        providers = choose_providers(
            device,
            ort.get_available_providers(),
            tf32=None if fp16 else precision == "tf32",  # fp16: keep the tensor cores
            nhwc="nhwc" in precision,
        )
        session = ort.InferenceSession(data, providers=providers)
        w, h = checkpoint.spec.input_size
        dtype = np.float16 if fp16 else np.float32
        x = np.random.default_rng(0).standard_normal((batch, 3, h, w)).astype(dtype)
        binding = session.io_binding()
        if device == "cuda":  # device-resident input and output: time the network, not copies
            binding.bind_ortvalue_input("input", ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0))
            binding.bind_output("logits", "cuda")
        else:
            binding.bind_cpu_input("input", x)
            binding.bind_output("logits")
        info = {"providers": session.get_providers()}
        if device == "cuda":
            # torch's allocator does not see ONNX Runtime's arena: read the device instead. Not
            # the same measure as the PyTorch rows' allocator peak, so each row names its own.
            info["memory"] = lambda: _grown_mb(before)
            info["memory_method"] = "device memory in use, grown since the session was made"
        return (lambda: session.run_with_iobinding(binding)), torch.device(device), info

    return factory


def _labels_graph(checkpoint: Checkpoint, precision: str):
    """uint8 images in, uint8 labels at 2× out, on the CPU: what `genadapt-serve` runs there."""

    def factory(batch: int):
        if precision == "int8":
            from genadapt.benchmarks.int8 import int8_segmenter

            segmenter = int8_segmenter(checkpoint)
        else:
            segmenter = OnnxSegmenter.from_checkpoint(checkpoint)
        w, h = checkpoint.spec.input_size
        images = np.random.default_rng(0).integers(0, 256, (batch, h, w, 3), dtype=np.uint8)
        out = segmenter.spec.output_size
        return (lambda: segmenter.run(images, out)), torch.device("cpu"), {}

    return factory


def _grown_mb(before: int) -> float | None:
    """MB the device's used memory grew by since `before`; None where it shrank, since memory
    that something else freed meanwhile makes the difference meaningless, not negative."""
    grown = _device_used_bytes() - before
    return round(grown / 2**20, 1) if grown >= 0 else None


def _device_used_bytes() -> int:
    """Memory in use on the GPU by every allocator of this process (and any other)."""
    free, total = torch.cuda.mem_get_info()
    return total - free


def run_table3(cfg: BenchConfig) -> dict:
    results: dict = {
        "environment": environment(cfg.device),
        "config": vars(cfg).copy(),
        "sizes": [],
    }
    for size in cfg.sizes:
        flops = gflops(cfg.width, cfg.padding, size)
        entry: dict = {
            "size": list(size),
            "gflop": round(flops, 2),
            "paper": PAPER.get(tuple(size)),
            "train": {},
            "eval": [],
        }
        for variant in ("full", "source-only"):
            log.info("train %s at %dx%d", variant, *size)
            entry["train"][variant] = train_iteration(cfg, size, variant)
        # On a CPU each backend's batch-1 call is kept for the comparison in turns below.
        kept: dict[tuple[str, str], Callable[[], object]] = {}
        on_cpu = torch.device(cfg.device).type == "cpu"
        for backend, precision, factory in eval_backends(cfg, size):
            for batch in cfg.batches:
                row = {"backend": backend, "precision": precision, "batch": batch}
                if isinstance(factory, str):
                    entry["eval"].append(row | {"skipped": factory})
                    continue
                log.info("eval %s %s batch %d at %dx%d", backend, precision, batch, *size)
                fn, device, info = factory(batch)
                memory = info.pop("memory", lambda d=device: peak_memory_mb(d))
                info.setdefault("memory_method", "PyTorch allocator peak")
                with watching_the_machine() as machine:
                    samples = time_calls(fn, device, cfg.warmup, cfg.reps, cfg.budget_s)
                stats = summarize(samples, items_per_call=batch)
                tflops = flops * batch / (stats["p50_ms"] / 1000) / 1000
                sync(device)
                entry["eval"].append(
                    row
                    | stats
                    | info
                    | {
                        "ms_per_image": round(stats["p50_ms"] / batch, 3),
                        "tflops": float(f"{tflops:.3g}"),  # 3 significant digits: CPUs reach 0.0004
                        "peak_memory_mb": memory(),
                        "machine": machine,
                    }
                )
                if on_cpu and batch == 1:
                    kept[(backend, precision)] = fn
                # Free this row's model or session now: freed during the next row's set-up, it
                # would show there as negative memory.
                fn = info = memory = None
                gc.collect()
        if on_cpu:
            entry["in_turns"] = best_against_eager_in_turns(entry["eval"], kept, cfg.turns)
        kept.clear()  # free the models now, not under the next size's training rows
        results["sizes"].append(entry)
    return results


def best_against_eager_in_turns(
    rows: list[dict], calls: dict[tuple[str, str], Callable[[], object]], rounds: int
) -> dict | None:
    """The CPU target's ratio, PyTorch eager fp32 over the fastest other backend at batch 1,
    measured again with the two taking turns call by call (`time_in_turns`): the rows above
    are timed one after the other, minutes apart, on a host whose speed drifts meanwhile."""
    measured = [r for r in rows if "skipped" not in r and r["batch"] == 1]
    others = [r for r in measured if (r["backend"], r["precision"]) != ("torch", "fp32")]
    if len(others) == len(measured) or not others:
        return None  # no eager row, or nothing to compare it with
    best = min(others, key=lambda r: r["ms_per_image"])
    pair = {"eager": ("torch", "fp32"), "best": (best["backend"], best["precision"])}
    log.info("eval %s %s and torch fp32 taking turns, %d rounds", *pair["best"], rounds)
    with watching_the_machine() as machine:
        samples = time_in_turns({role: calls[key] for role, key in pair.items()}, "cpu", rounds)
    eager_ms, best_ms = (1000 * float(np.median(samples[role])) for role in ("eager", "best"))
    return {
        "eager": "torch fp32",
        "best": " ".join(pair["best"]),
        "rounds": rounds,
        "eager_p50_ms": round(eager_ms, 3),
        "best_p50_ms": round(best_ms, 3),
        "ratio": round(eager_ms / best_ms, 3),
        "machine": machine,
    }
