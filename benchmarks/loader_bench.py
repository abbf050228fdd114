"""`genadapt-bench loader`: can the training loader keep an accelerator busy?

The trainer's own data path (`build_data` + `step_loader`: decode, scale, crop, one source
pair and one target image per iteration) runs on generated full-size frames in the GTA5
(1914×1052 PNG) and Cityscapes (2048×1024 PNG) layouts, with 0, 1, 2 … loader workers. Each
setting reports iterations/s the loader can feed, and how many cores an iteration of a given
duration needs (`--iteration-ms`: 94 ms is the `paper` preset's iteration measured on an H200):
the decoding rate per core in use, scaled to the cores that iteration needs.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

from PIL import Image

from genadapt.benchmarks.common import Reports
from genadapt.benchmarks.registry import Benchmark
from genadapt.benchmarks.timing import environment, watching_the_machine
from genadapt.scenes.generate import generate_scenes

GTA5_SIZE = (1914, 1052)  # GTA5's frames (docs/method.md), Cityscapes' are 2048×1024
PAPER_ITERATION_MS = 94.0  # the paper preset's pad100 iteration on one H200 (bf16)


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return round(size[0] * scale), round(size[1] * scale)


def write_full_size_frames(root: Path, frames: int, scale: float = 1.0) -> None:
    """`frames` built-in scenes per domain at Cityscapes' 2048×1024, the source rescaled to
    GTA5's 1914×1052 so that the aspect rules see GTA5's real shape (all × `scale`)."""
    generate_scenes(
        root, _scaled((2048, 1024), scale), source=frames, target_train=frames, target_val=0,
        unseen=0,
    )  # fmt: skip
    for folder, resample in (("images", Image.Resampling.BILINEAR), ("labels", None)):
        for path in sorted((root / "source" / folder).glob("*.png")):
            with Image.open(path) as img:
                img.load()
                gta5 = _scaled(GTA5_SIZE, scale)
                rescaled = img.resize(gta5, resample or Image.Resampling.NEAREST)
            rescaled.save(path)


def time_loader(config, steps: int, warmup: int = 4) -> dict:
    """Iterations/s of the trainer's loaders for `config` (num_workers included), measured
    over `steps` iterations after `warmup` (workers starting, first decodes)."""
    from genadapt.trainer.data import step_loader
    from genadapt.trainer.train import build_data

    data = build_data(config)
    loaders = [step_loader(d, 0, 1, config.num_workers, False) for d in (data.source, data.target)]
    batches = zip(*loaders, strict=False)
    for _ in range(warmup):
        next(batches)
    started = time.perf_counter()
    for _ in range(steps):
        next(batches)
    wall = time.perf_counter() - started
    return {
        "iterations_per_s": round(steps / wall, 3),
        "ms_per_iteration": round(1000 * wall / steps, 2),
    }


def run_loader(
    workers: list[int],
    frames: int = 12,
    steps: int = 24,
    iteration_ms: float = PAPER_ITERATION_MS,
    resizes: tuple[str, ...] = ("cover", "authors"),
    scale: float = 1.0,
) -> dict:
    """Every (resize rule, worker count) on `frames` generated frames per domain, with the
    `paper` preset's sizes: frames at 1024×512 or the authors' 640×320 crops (all × `scale`,
    which only a quick test changes)."""
    from genadapt.trainer.config import resolve_config

    need = 1000.0 / iteration_ms  # iterations/s the accelerator consumes
    rows = []
    with tempfile.TemporaryDirectory(prefix="genadapt-bench-loader-") as tmp:
        write_full_size_frames(Path(tmp), frames, scale)
        for resize in resizes:
            for count in workers:
                overrides = {
                    "source_root": str(Path(tmp) / "source"),
                    "target_root": str(Path(tmp) / "target"),
                    "source_val_count": 1,
                    "iterations": steps + 8,
                    "num_workers": count,
                    "resize": resize,
                    "crop": _scaled((640, 320), scale) if resize == "authors" else None,
                    "size": _scaled((1024, 512), scale),
                }
                config = resolve_config("paper", overrides=overrides)
                with watching_the_machine() as machine:  # the workers are our children
                    timing = time_loader(config, steps)
                # Each of the two loaders (source, target) has `count` worker processes; with
                # none, the main process decodes. Their rate per core in use says how many
                # cores an iteration of `iteration_ms` would need.
                cores = min(max(1, 2 * count), os.cpu_count() or 1)
                per_core = timing["iterations_per_s"] / cores
                rows.append(
                    {
                        "resize": resize,
                        "crop": list(config.crop) if config.crop else None,
                        "workers": count,
                        **timing,
                        "cores_used": cores,
                        "keeps_up": timing["iterations_per_s"] >= need,
                        "cores_needed": math.ceil(need / per_core),
                        "machine": machine,
                    }
                )
    return {
        "environment": environment("cpu"),
        "frames_per_domain": frames,
        "frame_sizes": {
            "gta5": list(_scaled(GTA5_SIZE, scale)),
            "cityscapes": list(_scaled((2048, 1024), scale)),
        },
        "iteration_ms": iteration_ms,
        "iterations_per_s_needed": round(need, 2),
        "rows": rows,
    }


def loader_markdown(results: dict) -> str:
    need = results["iterations_per_s_needed"]
    lines = [
        f"Training loader, one source pair + one target image per iteration; an iteration of "
        f"{results['iteration_ms']} ms needs {need} iterations/s.",
        "",
        "| resize | workers per loader | cores used | iterations/s | ms/iteration | keeps up "
        "| cores needed |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        contended = " (CONTENDED)" if row["machine"].get("contended") else ""
        lines.append(
            f"| {row['resize']} | {row['workers']} | {row['cores_used']} | "
            f"{row['iterations_per_s']}{contended} | {row['ms_per_iteration']} | "
            f"{'yes' if row['keeps_up'] else 'no'} | {row['cores_needed']} |"
        )
    return "\n".join(lines) + "\n"


def loader_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--frames", type=int, default=12, help="generated frames per domain")
    p.add_argument("--steps", type=int, default=24, help="iterations timed per setting")
    p.add_argument(
        "--iteration-ms", type=float, default=94.0, help="the iteration to feed (H200 paper: 94)"
    )
    p.add_argument("--quick", action="store_true", help="small frames, seconds on a CPU")
    p.add_argument("--out", type=Path, required=True)


def cmd_loader(args: argparse.Namespace) -> dict:
    if args.quick:  # small frames: the path, not the numbers
        results = run_loader([0, 1], frames=3, steps=3, scale=0.125)
    else:
        results = run_loader(args.workers, args.frames, args.steps, args.iteration_ms)
    return Reports(args.out).write("loader", results, loader_markdown(results))


BENCHMARKS = [
    Benchmark("loader", "the training loader on full-size frames vs an iteration",
              loader_arguments, cmd_loader),
]  # fmt: skip
