"""`genadapt-bench label`: images per second of genadapt-label on Ray with 1 and 2 actors (or
more), against plain genadapt-predict, on the same images and model, in one run.

Each is a fresh process, as a user runs it. genadapt-label's rate is taken once Ray is up (its
summary's `labelling_s`), since a job of millions of images pays the start-up once; the start-up
is reported beside it. genadapt-predict's rate includes loading the model (about a second).

Ray's daemons and workers are not this process's children when they end (Ray kills them), so
their CPU time cannot be told from another program's: a genadapt-label row's machine record
counts them as others and reads `contended` even on an idle machine. The predict row, measured
in the same run, says whether the machine really was.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from genadapt.benchmarks.common import Reports, parse_size, random_checkpoint
from genadapt.benchmarks.registry import Benchmark
from genadapt.benchmarks.report import rows_markdown
from genadapt.benchmarks.timing import environment, watching_the_machine
from genadapt.checkpoint import save_checkpoint
from genadapt.scenes.generate import SceneSpec, make_scene


def write_images(folder: Path, count: int, size: tuple[int, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rgb, _ = make_scene(SceneSpec("target", "val", i, size, seed=7))
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
        (folder / f"frame_{i:05d}.jpg").write_bytes(buffer.getvalue())


def run_label_bench(
    images: int, image_size: tuple[int, int], network: tuple[int, int], width: float,
    actor_counts: list[int],
) -> dict:  # fmt: skip
    cores = os.cpu_count() or 1
    results: dict = {"environment": environment("cpu"), "images": images, "rows": []}
    results["setup"] = {"image_size": list(image_size), "network": list(network), "width": width}
    with tempfile.TemporaryDirectory(prefix="genadapt-bench-label-") as tmp:
        root = Path(tmp)
        write_images(root / "in", images, image_size)
        model = save_checkpoint(random_checkpoint(network, width), root / "model.pt")
        started = time.perf_counter()
        with watching_the_machine() as machine:
            _run("genadapt-predict", model, root / "in", "--out", root / "predict")
        seconds = time.perf_counter() - started
        results["rows"].append({
            "command": "genadapt-predict", "actors": "–", "threads": cores, "start_s": "–",
            "images_per_s": round(images / seconds, 2), "seconds": round(seconds, 1),
            "machine": machine,
        })  # fmt: skip
        for actors in actor_counts:
            threads, out = max(1, cores // actors), root / f"label-{actors}"
            with watching_the_machine() as machine:
                _run("genadapt-label", model, root / "in", "--out", out, "--actors", actors,
                     "--threads", threads)  # fmt: skip
            summary = json.loads((out / "label_summary.json").read_text())
            results["rows"].append({
                "command": "genadapt-label", "actors": actors, "threads": threads,
                "images_per_s": summary["images_per_s"], "seconds": summary["labelling_s"],
                "start_s": summary["ray_start_s"], "machine": machine,
            })  # fmt: skip
    base = results["rows"][0]["images_per_s"]
    for row in results["rows"]:
        row["vs_predict"] = round(row["images_per_s"] / base, 2)
    return results


def _run(command: str, *args: object) -> None:
    """A genadapt console script of this environment, as a user runs it."""
    script = Path(sys.executable).parent / command
    subprocess.run([str(script), *map(str, args)], check=True, capture_output=True)


def label_markdown(results: dict) -> str:
    setup = results["setup"]
    title = (
        f"{results['images']} JPEGs of {setup['image_size'][0]}×{setup['image_size'][1]}, "
        f"network {setup['network'][0]}×{setup['network'][1]} width {setup['width']}, "
        f"on {results['environment']['device']}"
    )
    columns = ["command", "actors", "threads", "images_per_s", "vs_predict", "seconds", "start_s"]
    others = results["rows"][0]["machine"].get("others_cpu_share")
    note = (
        "\nThe genadapt-label rows' machine records count Ray's own daemons and workers as "
        "other processes (they are not this process's children when they end); the "
        f"genadapt-predict row saw others use {others} of the CPUs.\n"
    )
    return (
        "# Labelling on Ray against genadapt-predict\n\n"
        + rows_markdown(title, results["rows"], columns)
        + note
    )


def label_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=int, default=96)
    p.add_argument("--image-size", default="1024x512", help="WxH of the JPEGs labelled")
    p.add_argument("--network", default="512x256", help="WxH the model runs at")
    p.add_argument("--width", type=float, default=0.25, help="F+C width (random weights)")
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    p.add_argument("--quick", action="store_true", help="a few small images: the path only")
    p.add_argument("--out", type=Path, required=True)


def cmd_label(args: argparse.Namespace) -> dict:
    if args.quick:
        results = run_label_bench(6, (128, 64), (64, 32), 0.0625, [1])
    else:
        results = run_label_bench(
            args.images, parse_size(args.image_size), parse_size(args.network), args.width,
            args.actors,
        )  # fmt: skip
    return Reports(args.out).write("label", results, label_markdown(results))


BENCHMARKS = [
    Benchmark("label", "genadapt-label on Ray (1, 2 actors) against genadapt-predict",
              label_arguments, cmd_label),
]  # fmt: skip
