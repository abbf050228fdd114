"""FCN-8s's frozen bilinear upsamplers as interpolation (what `BilinearUpsample` runs) against the
grouped transposed convolution they replace, timed in one process on one device: F+C forward in
fp16 + channels_last + CUDA graph on a GPU (fp32 eager on a CPU), and with --train the full
training iteration too (a minute more on a GPU: cuDNN's benchmark mode tunes every new shape).

    genadapt-bench upsample-probe [--size 1024x512] [--train] --out DIR
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from genadapt.benchmarks.common import Reports, parse_size, resolve_device
from genadapt.benchmarks.registry import Benchmark
from genadapt.benchmarks.table3 import BenchConfig, _graphed, train_iteration
from genadapt.benchmarks.timing import environment, summarize, time_calls
from genadapt.cli import add_device_argument
from genadapt.model import BilinearUpsample, ModelConfig, build_model


@contextmanager
def deconvolution_upsamplers():
    """Every BilinearUpsample runs its transposed convolution for the length of the block."""
    forward = BilinearUpsample.forward
    BilinearUpsample.forward = BilinearUpsample.deconvolution
    try:
        yield
    finally:
        BilinearUpsample.forward = forward


def forward_ms(size: tuple[int, int], width: float, device: str, reps: int) -> dict:
    cuda = device == "cuda"
    model = build_model(ModelConfig(19, width, "pad1")).eval().to(device)
    x = torch.randn(1, 3, size[1], size[0], device=device)
    if cuda:
        model = model.half().to(memory_format=torch.channels_last)
        x = x.half().contiguous(memory_format=torch.channels_last)

    def forward(inp: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(inp)

    call = _graphed(forward, x) if cuda else forward
    return summarize(time_calls(lambda: call(x), device, 3, reps, budget_s=10))


def run(size: tuple[int, int], width: float, device: str, reps: int, train: bool = False) -> dict:
    torch.backends.cudnn.benchmark = device == "cuda"
    cfg = BenchConfig([size], width=width, train_width=width, device=device, train_reps=10)
    results: dict = {"environment": environment(device), "size": list(size), "width": width}
    for name, upsamplers in (
        ("interpolation", nullcontext()),
        ("deconvolution", deconvolution_upsamplers()),
    ):
        with upsamplers:
            results[name] = {"forward": forward_ms(size, width, device, reps)}
            if train:
                results[name]["train_full"] = train_iteration(cfg, size, "full")
    interp, deconv = results["interpolation"], results["deconvolution"]
    results["speedup"] = {
        key: round(deconv[key]["p50_ms"] / interp[key]["p50_ms"], 3) for key in interp
    }
    return results


def upsample_probe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", default="1024x512")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--reps", type=int, default=50)
    add_device_argument(p, indexed=True)
    p.add_argument("--train", action="store_true", help="time the training iteration too")
    p.add_argument("--out", type=Path, required=True)


def cmd_upsample_probe(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    results = run(parse_size(args.size), args.width, device, args.reps, args.train)
    speedup = ", ".join(f"{k} ×{v}" for k, v in results["speedup"].items())
    return Reports(args.out).write(
        "upsample-probe", results, f"# Interpolation against deconvolution\n\nSpeed-up: {speedup}\n"
    )


BENCHMARKS = [
    Benchmark("upsample-probe", "FCN-8s's upsamplers: interpolation against deconvolution",
              upsample_probe_arguments, cmd_upsample_probe),
]  # fmt: skip
