"""`genadapt-label MODEL INPUTS... --out DIR`: label an image set of any size on Ray.

INPUTS are image files, folders (searched recursively), glob patterns ('data/**/*.jpg', quoted)
or list files (@list.txt: one path per line). Each model replica is a Ray actor (`--actors N`,
`--threads` CPU threads each, or `--gpus-per-actor 1`), and images stream through Ray Data in
batches. Each image gives OUT/<stem>_labels.png (with --color and --overlay the others too),
written atomically, and one line in OUT/manifest.jsonl: input, output, the input's SHA-256,
the model's, status (ok or failed) and error. A rerun skips what the manifest says is done
with this model, so a killed job resumes where it stopped; a file that cannot be read is a
`failed` line and the job goes on.

A local Ray is started for the command unless --address joins a cluster; the inputs and OUT
must then be on storage that every node sees.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from genadapt.cli import add_runtime_arguments, run_cli, runtime_options, setup_logging
from genadapt.commands.predict import Job, collect_jobs
from genadapt.encoding import encode_jpeg, encode_png
from genadapt.errors import GenadaptError
from genadapt.fileio import atomic_write_bytes
from genadapt.imaging import (
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    colorize,
    overlay,
    upload_views,
)
from genadapt.sidecar import SIDECAR_NAME, file_sha256

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
SUMMARY = "label_summary.json"
FIELDS = ("input", "output", "sha256", "model_sha256", "status", "error")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genadapt-label", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    parser.add_argument("model", type=Path, help="checkpoint.pt, exported .onnx or a folder")
    parser.add_argument(
        "inputs", nargs="+", help="image files, folders, glob patterns or @list files"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_runtime_arguments(parser)
    parser.add_argument("--actors", type=int, default=1, help="model replicas (Ray actors)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per actor")
    parser.add_argument("--gpus-per-actor", type=float, default=0, help="e.g. 1: a GPU each")
    parser.add_argument("--batch-size", type=int, default=8, help="images per actor call")
    parser.add_argument("--color", action="store_true", help="also write <stem>_color.png")
    parser.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.jpg")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--address", help="a Ray cluster to join (default: start a local one)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def expand_inputs(inputs: list[str]) -> list[Job]:
    """Files and folders as genadapt-predict takes them, glob patterns, and @list files."""
    paths: list[Path] = []
    for item in inputs:
        if item.startswith("@"):
            listed = Path(item[1:])
            try:
                lines = listed.read_text().splitlines()
            except OSError as exc:
                raise GenadaptError(f"cannot read the list {listed}: {exc}") from None
            paths += [Path(line.strip()) for line in lines if line.strip()]
        elif glob.has_magic(item):
            matched = sorted(glob.glob(item, recursive=True))
            if not matched:
                raise GenadaptError(f"no file matches {item!r}")
            paths += [Path(m) for m in matched if Path(m).is_file()]
        else:
            paths.append(Path(item))
    return collect_jobs(paths)


def model_sha256(model: Path) -> str:
    """What identifies the model: the file's hash, or an export folder's model.json's."""
    return file_sha256(model / SIDECAR_NAME if model.is_dir() else model)


def done_already(out: Path, model_hash: str) -> set[str]:
    """Inputs the manifest records as labelled by this model, whose labels are still there."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        return set()
    last: dict[str, dict] = {}
    with manifest.open() as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            last[record["input"]] = record
    return {
        source
        for source, record in last.items()
        if record["status"] == "ok"
        and record["model_sha256"] == model_hash
        and (out / record["output"]).is_file()
    }


class Labeller:
    """One model replica: a batch of (input, stem) rows → label files and manifest rows."""

    def __init__(
        self, model: str, out: str, options: dict, outputs: list[str], max_pixels: int,
        threads: int, model_hash: str,
    ) -> None:  # fmt: skip
        import torch

        from genadapt.runtime import RuntimeOptions, load_segmenter

        torch.set_num_threads(threads)
        self.segmenter = load_segmenter(model, RuntimeOptions(**options))
        self.out, self.outputs, self.max_pixels = Path(out), outputs, max_pixels
        self.model_hash = model_hash
        self.palette = self.segmenter.spec.label_space.palette_array()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: list[dict] = []
        ready: list[tuple[str, str, str, np.ndarray, np.ndarray | None]] = []
        spec = self.segmenter.spec
        for source, stem in zip(batch["input"], batch["stem"], strict=True):
            try:
                data = Path(source).read_bytes()
                photo_size = spec.output_size if "overlay" in self.outputs else None
                net, photo, _ = upload_views(data, spec.input_size, photo_size, self.max_pixels)
                ready.append((str(source), str(stem), hashlib.sha256(data).hexdigest(), net, photo))
            except (ImageDecodeError, OSError) as exc:
                rows.append(self._row(str(source), "", "", "failed", str(exc)))
        if ready:
            labels = self.segmenter.segment([net for *_, net, _ in ready])
            for (source, stem, digest, _, photo), label in zip(ready, labels, strict=True):
                rows.append(self._write(source, stem, digest, label, photo))
        return {field: np.array([row[field] for row in rows], dtype=str) for field in FIELDS}

    def _write(self, source, stem, digest, labels, photo) -> dict:
        base = self.out / stem
        try:
            atomic_write_bytes(f"{base}_labels.png", encode_png(labels))
            if "color" in self.outputs:
                atomic_write_bytes(f"{base}_color.png", encode_png(colorize(labels, self.palette)))
            if "overlay" in self.outputs:
                blend = overlay(photo, labels, self.palette)
                atomic_write_bytes(f"{base}_overlay.jpg", encode_jpeg(blend))
        except OSError as exc:  # a full disk is every file's failure: said per file, not lost
            return self._row(source, "", digest, "failed", f"cannot write: {exc}")
        return self._row(source, f"{stem}_labels.png", digest, "ok", "")

    def _row(self, source: str, output: str, digest: str, status: str, error: str) -> dict:
        return {"input": source, "output": output, "sha256": digest,
                "model_sha256": self.model_hash, "status": status, "error": error}  # fmt: skip


def main(args: argparse.Namespace) -> int:
    if args.actors < 1 or args.threads < 1 or args.batch_size < 1:
        raise GenadaptError("--actors, --threads and --batch-size must be at least 1")
    if not args.model.exists():
        raise GenadaptError(f"model not found: {args.model}")
    jobs = expand_inputs(args.inputs)
    if not jobs:
        raise GenadaptError("no images found in the given inputs")
    args.out.mkdir(parents=True, exist_ok=True)
    model_hash = model_sha256(args.model)
    done = done_already(args.out, model_hash)
    todo = [job for job in jobs if str(job.source) not in done]
    log.info("%d images: %d done already, %d to label", len(jobs), len(jobs) - len(todo), len(todo))
    counts, times = {"ok": 0, "failed": 0}, {"ray_start_s": 0.0, "labelling_s": 0.0}
    if todo:
        counts, times = _label_on_ray(args, todo, model_hash)
    labelling = times["labelling_s"]
    summary = {
        "images": len(jobs), "skipped_done": len(jobs) - len(todo), "labelled": counts["ok"],
        "failed": counts["failed"], "actors": args.actors, "threads_per_actor": args.threads,
        **{k: round(v, 2) for k, v in times.items()},
        # Once Ray is up: what a job of millions of images runs at.
        "images_per_s": round(counts["ok"] / labelling, 3) if counts["ok"] else 0.0,
        "model_sha256": model_hash,
    }  # fmt: skip
    atomic_write_bytes(args.out / SUMMARY, json.dumps(summary, indent=2).encode())
    log.info("labelled %d, failed %d, skipped %d: %s", counts["ok"], counts["failed"],
             summary["skipped_done"], args.out / MANIFEST)  # fmt: skip
    return 1 if counts["failed"] else 0


def _label_on_ray(
    args: argparse.Namespace, todo: list[Job], model_hash: str
) -> tuple[dict[str, int], dict[str, float]]:
    try:
        import ray
    except ImportError:
        raise GenadaptError("genadapt-label runs on Ray: pip install 'ray[data]'") from None
    options = runtime_options(args)
    outputs = [name for name in ("color", "overlay") if getattr(args, name)]
    started = time.perf_counter()
    if args.address is None:
        cpus = max(os.cpu_count() or 1, args.actors * args.threads)
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=args.verbose)
    else:
        ray.init(address=args.address, log_to_driver=args.verbose)
    if not args.verbose:
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False  # ours below, one bar
    ray_start = time.perf_counter() - started
    log.info("Ray up in %.1f s (%s)", ray_start, args.address or "local")
    started = time.perf_counter()
    items = [{"input": str(job.source), "stem": str(job.stem)} for job in todo]
    results = ray.data.from_items(items).map_batches(
        Labeller,
        fn_constructor_kwargs={
            "model": str(args.model.resolve()),
            "out": str(args.out.resolve()),
            "options": {
                "backend": options.backend,
                "device": options.device,
                "upsample": options.upsample,
            },
            "outputs": outputs,
            "max_pixels": args.max_pixels,
            "threads": args.threads,
            "model_hash": model_hash,
        },
        batch_size=args.batch_size,
        batch_format="numpy",
        concurrency=args.actors,
        num_cpus=args.threads,
        num_gpus=args.gpus_per_actor,
    )
    counts = {"ok": 0, "failed": 0}
    try:
        bar = tqdm(total=len(todo), unit="img", desc="label")
        with open(args.out / MANIFEST, "a") as manifest, bar, logging_redirect_tqdm():
            for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
                for row in zip(*(batch[field] for field in FIELDS), strict=True):
                    record = dict(zip(FIELDS, map(str, row), strict=True))
                    manifest.write(json.dumps(record) + "\n")
                    counts[record["status"]] += 1
                    if record["status"] == "failed":
                        log.error("%s: %s", record["input"], record["error"])
                manifest.flush()  # what is written is done: a kill loses no finished image
                bar.update(len(batch["input"]))
    finally:
        labelling = time.perf_counter() - started
        ray.shutdown()
    return counts, {"ray_start_s": ray_start, "labelling_s": labelling}


def cli(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_cli("genadapt-label", lambda: main(args), argv)


if __name__ == "__main__":
    sys.exit(cli())
