"""`genadapt-predict MODEL INPUT... --out DIR`: segment image files and folders.

For each image it writes `<name>_labels.png` (uint8 train ids), `<name>_color.png` and
`<name>_overlay.jpg` at 2× the network size (2048×1024 for 1024×512). A file that cannot be read
(a dangling or looping link included) is reported and skipped; the others are still processed
and the exit status is 1. Existing outputs are never replaced unless --overwrite is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from genadapt.cli import add_runtime_arguments, run_cli, runtime_options, setup_logging
from genadapt.encoding import encode_jpeg, encode_png
from genadapt.errors import GenadaptError
from genadapt.fileio import atomic_write_bytes
from genadapt.imaging import (
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    colorize,
    network_input_and_photo,
    overlay,
)
from genadapt.runtime import load_segmenter

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
OUTPUT_SUFFIXES = ("_labels.png", "_color.png", "_overlay.jpg")
SUMMARY_NAME = "predict_summary.json"


@dataclass(frozen=True)
class Job:
    source: Path
    stem: Path  # output path without the suffix, relative to --out


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genadapt-predict",
        description="Segment images with a genadapt checkpoint (F+C).",
    )
    parser.add_argument("model", type=Path, help="checkpoint.pt, exported .onnx or .engine")
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or folders (recursive)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_runtime_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--overwrite", action="store_true", help="replace outputs already in --out")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def collect_jobs(inputs: list[Path]) -> list[Job]:
    """Files as given (output named by stem) and images in folders (output mirrors the tree)."""
    jobs: list[Job] = []
    for item in inputs:
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            for folder in (p for p in files if p.is_dir() and not p.is_symlink()):
                log.warning("%s: a folder named like an image, not an image: skipped", folder)
            # A link is kept even when it leads nowhere: reading it reports it as a failure.
            files = [p for p in files if p.is_symlink() or p.is_file()]
            jobs += [Job(p, p.relative_to(item).with_suffix("")) for p in files]
        elif item.exists():
            jobs.append(Job(item, Path(item.stem)))
        else:
            raise GenadaptError(f"input not found: {item}")
    return _deduplicate(jobs)


def _deduplicate(jobs: list[Job]) -> list[Job]:
    # Two inputs with the same name would overwrite each other's outputs: number the later ones.
    seen: set[Path] = set()
    unique = []
    for job in jobs:
        stem, n = job.stem, 1
        while stem in seen:
            stem, n = job.stem.with_name(f"{job.stem.name}_{n}"), n + 1
        if stem != job.stem:
            log.warning("%s: output renamed to %s to avoid a name clash", job.source, stem)
        seen.add(stem)
        unique.append(Job(job.source, stem))
    return unique


def existing_outputs(out_dir: Path, jobs: list[Job]) -> list[Path]:
    """What this run would write that is already there."""
    planned = [out_dir / f"{job.stem}{suffix}" for job in jobs for suffix in OUTPUT_SUFFIXES]
    return [path for path in [*planned, out_dir / SUMMARY_NAME] if path.exists()]


def write_outputs(
    out_dir: Path, stem: Path, rgb: np.ndarray, labels: np.ndarray, palette: np.ndarray
) -> None:
    base = out_dir / stem
    atomic_write_bytes(f"{base}_labels.png", encode_png(labels))
    atomic_write_bytes(f"{base}_color.png", encode_png(colorize(labels, palette)))
    atomic_write_bytes(f"{base}_overlay.jpg", encode_jpeg(overlay(rgb, labels, palette)))


def main(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise GenadaptError("--batch-size must be at least 1")
    jobs = collect_jobs(args.inputs)
    if not jobs:
        raise GenadaptError("no images found in the given inputs")
    clashes = existing_outputs(args.out, jobs)
    if clashes and not args.overwrite:
        more = f" and {len(clashes) - 1} more" if len(clashes) > 1 else ""
        raise GenadaptError(
            f"{clashes[0]}{more} already exist: pass --overwrite to replace them, or choose "
            "another --out"
        )
    segmenter = load_segmenter(args.model, runtime_options(args))
    palette = segmenter.spec.label_space.palette_array()
    failures: dict[str, str] = {}
    written: list[str] = []
    progress = tqdm(total=len(jobs), unit="img", desc="segment")
    try:
        with logging_redirect_tqdm():  # a log line during the run never lands on the bar's line
            _segment_all(args, jobs, segmenter, palette, failures, written, progress)
    finally:  # even a run that stops on an error (a full disk) says what it did
        progress.close()
        summary = {"processed": len(written), "failed": failures}
        if len(written) + len(failures) < len(jobs):
            summary["not_reached"] = len(jobs) - len(written) - len(failures)
        atomic_write_bytes(args.out / SUMMARY_NAME, json.dumps(summary, indent=2).encode())
    log.info("wrote %d of %d images to %s", summary["processed"], len(jobs), args.out)
    if failures:
        log.error("%d file(s) failed: %s", len(failures), ", ".join(failures))
        return 1
    return 0


def _segment_all(args, jobs, segmenter, palette, failures, written, progress) -> None:
    """Segment `jobs` in batches; unreadable files go to `failures`, written ones to `written`."""
    for start in range(0, len(jobs), args.batch_size):
        batch, inputs, photos = [], [], []
        for job in jobs[start : start + args.batch_size]:
            try:
                net, photo = network_input_and_photo(
                    job.source.read_bytes(),
                    segmenter.spec.input_size,
                    segmenter.spec.output_size,
                    args.max_pixels,
                )
                inputs.append(net)
                photos.append(photo)  # for the overlay, decoded at (at least) the output size
                batch.append(job)
            except (ImageDecodeError, OSError) as exc:
                failures[str(job.source)] = str(exc)
                log.error("%s: skipped: %s", job.source, exc)
                progress.update(1)
        if not batch:
            continue
        for job, rgb, labels in zip(batch, photos, segmenter.segment(inputs), strict=True):
            write_outputs(args.out, job.stem, rgb, labels, palette)
            written.append(str(job.source))
            progress.update(1)


def cli(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_cli("genadapt-predict", lambda: main(args), argv)


if __name__ == "__main__":
    sys.exit(cli())
