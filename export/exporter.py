"""The export pipeline: checkpoint → ONNX flavours (→ TensorRT engine) (→ Triton repository),
each artifact gated by parity, all described by one model.json.

Everything is written to a staging folder first and moved into place only when every check
passed: a failing export leaves the output folder exactly as it was.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import genadapt
from genadapt.checkpoint import load_checkpoint
from genadapt.datasets import SegmentationDataset
from genadapt.export.onnx_export import ExportError, write_onnx
from genadapt.export.parity import ParityError, check_parity
from genadapt.onnx_graph import DEFAULT_OPSET, FLAVOURS
from genadapt.runtime.onnx_backend import OnnxSegmenter
from genadapt.sidecar import SIDECAR_NAME, Sidecar, file_sha256

log = logging.getLogger(__name__)


@dataclass
class ExportOptions:
    flavours: tuple[str, ...] = FLAVOURS
    opset: int = DEFAULT_OPSET
    upsample: str = "bilinear"
    tensorrt: bool = False
    precision: str = "fp16"  # of the TensorRT engine; ONNX files are fp32
    max_batch: int = 8
    triton: bool = False
    parity_images: int = 8
    eval_kind: str | None = None
    eval_root: str | None = None
    eval_limit: int | None = 50


def run_export(checkpoint_path: Path, out: Path, options: ExportOptions) -> Sidecar:
    checkpoint = load_checkpoint(checkpoint_path)
    eval_set = None
    if options.eval_kind:
        eval_set = SegmentationDataset(
            options.eval_kind, options.eval_root, label_space=checkpoint.label_space
        )
    sidecar = _new_sidecar(checkpoint, checkpoint_path, options)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        for flavour in options.flavours:
            path = staging / f"model.{flavour}.onnx"
            artifact = write_onnx(checkpoint, flavour, path, options.upsample, options.opset)
            sidecar.artifacts[path.name] = artifact
            sidecar.save(staging)  # the runtime reads the artifact through its sidecar
            segmenter = OnnxSegmenter.from_file(path, "cpu")
            logits_fn = None
            if flavour == "logits":
                logits_fn = lambda x, s=segmenter: s.session.run(None, {s.in_name: x})[0]  # noqa: E731
            artifact.parity = _gate(
                path.name,
                check_parity(
                    checkpoint,
                    segmenter,
                    "fp32",
                    options.parity_images,
                    logits_fn,
                    eval_set,
                    options.eval_limit,
                ),
            )
        if options.tensorrt:
            _tensorrt(staging, sidecar, checkpoint, options, eval_set)
        sidecar.save(staging)
        if options.triton:
            _triton(staging, sidecar, options)
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s to %s", ", ".join(sidecar.artifacts), out)
    return sidecar


def _gate(name: str, result) -> dict:
    summary = result.to_dict()
    if not result.passed:
        raise ParityError(f"{name} failed the parity gate: {'; '.join(result.reasons)}")
    log.info(
        "%s parity: labels agree on %.4f%% of pixels, mIoU delta %.3f",
        name,
        100 * result.label_agreement,
        result.miou_delta,
    )
    return summary


def _tensorrt(staging: Path, sidecar: Sidecar, checkpoint, options: ExportOptions, eval_set):
    from genadapt.export.tensorrt_build import build_engine
    from genadapt.runtime.tensorrt_backend import TensorRTSegmenter

    name = "model.labels.onnx"
    if name not in sidecar.artifacts:
        raise ExportError(
            "a TensorRT engine is built from the labels flavour: add --flavour labels"
        )
    engine = staging / "model.engine"
    cache = staging.parent / "timing.cache"  # kept between exports: rebuilds take seconds
    artifact = build_engine(
        staging / name,
        engine,
        sidecar.artifacts[name],
        options.precision,
        options.max_batch,
        timing_cache=cache,
    )
    sidecar.artifacts[engine.name] = artifact
    sidecar.save(staging)
    artifact.parity = _gate(
        engine.name,
        check_parity(
            checkpoint,
            TensorRTSegmenter(engine),
            options.precision,
            options.parity_images,
            eval_dataset=eval_set,
            eval_limit=options.eval_limit,
        ),
    )


def _triton(staging: Path, sidecar: Sidecar, options: ExportOptions) -> None:
    from genadapt.export.triton import write_repository

    name = "model.engine" if "model.engine" in sidecar.artifacts else "model.labels.onnx"
    if name not in sidecar.artifacts:
        raise ExportError("the Triton repository serves the labels flavour: add --flavour labels")
    write_repository(
        staging / "triton", staging / name, sidecar.artifacts[name], max_batch=options.max_batch
    )


def _publish(staging: Path, out: Path) -> None:
    """Move every staged file into `out`; the sidecar last, so it never describes stale files."""
    entries = sorted(staging.iterdir(), key=lambda p: p.name == SIDECAR_NAME)
    for entry in entries:
        target = out / entry.name
        if entry.is_dir():
            if target.exists():
                shutil.rmtree(target)
            entry.rename(target)
        else:
            entry.replace(target)


def _new_sidecar(checkpoint, path: Path, options: ExportOptions) -> Sidecar:
    import onnx
    import onnxruntime
    import torch

    space = checkpoint.label_space
    return Sidecar(
        label_space=space.to_dict(),
        class_names=list(space.names),
        palette=[list(c) for c in space.palette],
        input_size=list(checkpoint.input_size),
        output_scale=2,
        normalization=checkpoint.normalization.to_dict(),
        upsample=options.upsample,
        checkpoint={
            "file": path.name,
            "sha256": file_sha256(path),
            "step": checkpoint.step,
            "model": checkpoint.model_config.to_dict(),
        },
        versions={
            "genadapt": genadapt.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
        },
    )
