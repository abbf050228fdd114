"""The export pipeline: checkpoint → ONNX flavours (→ TensorRT engine) (→ Triton repository),
each artifact gated by parity, all described by one model.json.

Everything is written to a staging folder first and moved into place only when every check
passed: a failing export leaves the output folder exactly as it was.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import genadapt
from genadapt.checkpoint import Checkpoint, load_checkpoint
from genadapt.datasets import SegmentationDataset
from genadapt.export.onnx_export import ExportError, model_elements, write_onnx
from genadapt.export.parity import ParityError, check_parity
from genadapt.export.quantize import Calibration, quantize_labels_graph
from genadapt.fileio import raise_if_disk_full
from genadapt.onnx_graph import DEFAULT_OPSET, FLAVOURS, OnnxGraph, export_graph
from genadapt.runtime import TorchSegmenter
from genadapt.runtime.onnx_backend import OnnxSegmenter
from genadapt.sidecar import SIDECAR_NAME, Sidecar, file_sha256
from genadapt.spec import ModelSpec, Precision

log = logging.getLogger(__name__)
INT8_FILE = "model.labels.int8.onnx"


@dataclass
class ExportOptions:
    flavours: tuple[str, ...] = FLAVOURS
    opset: int = DEFAULT_OPSET
    upsample: str = "bilinear"
    tensorrt: bool = False
    precision: Precision = "fp16"  # of the TensorRT engine; ONNX files are fp32
    max_batch: int = 8
    triton: bool = False
    parity_images: int = 8
    eval_kind: str | None = None
    eval_root: str | None = None
    eval_limit: int | None = 50
    int8: bool = False  # also model.labels.int8.onnx, for CPUs, behind its own gate
    calibration: Calibration = field(default_factory=Calibration)


def run_export(checkpoint_path: Path, out: Path, options: ExportOptions) -> Sidecar:
    checkpoint = load_checkpoint(checkpoint_path)
    eval_set = None
    if options.eval_kind:
        eval_set = SegmentationDataset(
            options.eval_kind, options.eval_root, label_space=checkpoint.spec.label_space
        )
    model = checkpoint.build_model()  # built once: exported, and the parity gate's reference
    spec = checkpoint.spec.replace(upsample=options.upsample)
    reference = TorchSegmenter(model, spec)
    sidecar = _new_sidecar(checkpoint, checkpoint_path, spec)
    weight_elements = model_elements(checkpoint)
    gate = GateInputs(reference, options.parity_images, eval_set, options.eval_limit)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        graphs = {}
        for flavour in options.flavours:
            graph = graphs[flavour] = export_graph(model, flavour, spec, options.opset)
            artifact = write_onnx(graph, staging / f"model.{flavour}.onnx", weight_elements)
            segmenter = OnnxSegmenter.from_graph(graph, spec)
            logits_fn = segmenter.logits if flavour == "logits" else None
            artifact.parity = gate.check(artifact.file, segmenter, "fp32", logits_fn)
            sidecar.artifacts[artifact.file] = artifact
        if options.int8:
            _int8(staging, sidecar, graphs, options, gate, weight_elements)
        if options.tensorrt:
            _tensorrt(staging, sidecar, options, gate)
        if options.triton:
            _triton(staging, sidecar, options)
        sidecar.save(staging)  # once, describing exactly what is published beside it
        _publish(staging, out)
    except Exception as exc:
        raise_if_disk_full(
            exc, out, f"cannot write the export to {out}", "nothing was published there"
        )
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s to %s", ", ".join(sidecar.artifacts), out)
    return sidecar


@dataclass
class GateInputs:
    """What every artifact is compared against: the reference and the images."""

    reference: TorchSegmenter
    images: int
    eval_set: SegmentationDataset | None
    eval_limit: int | None

    def check(self, name: str, segmenter, precision: Precision, logits_fn=None) -> dict:
        result = check_parity(
            self.reference,
            segmenter,
            precision,
            self.images,
            logits_fn,
            self.eval_set,
            self.eval_limit,
        )
        return _gate(name, result)


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


def _int8(staging: Path, sidecar: Sidecar, graphs: dict, options, gate, weight_elements: int):
    """model.labels.int8.onnx: the labels graph quantized, gated like every artifact."""
    if "labels" not in graphs:
        raise ExportError("INT8 is made from the labels flavour: add --flavour labels")
    fp32 = graphs["labels"]
    spec = sidecar.spec.replace(precision="int8")
    data, how = quantize_labels_graph(fp32.data, spec, fp32.io.input_name, options.calibration)
    graph = OnnxGraph(data, "labels", fp32.io, fp32.opset)
    artifact = write_onnx(graph, staging / INT8_FILE, weight_elements, precision="int8")
    artifact.quantization = how
    artifact.parity = gate.check(artifact.file, OnnxSegmenter.from_graph(graph, spec), "int8")
    sidecar.artifacts[artifact.file] = artifact


def _tensorrt(staging: Path, sidecar: Sidecar, options: ExportOptions, gate: GateInputs):
    from genadapt.export.tensorrt_build import build_engine
    from genadapt.runtime.tensorrt_backend import TensorRTSegmenter

    # An INT8 engine is built from the QDQ graph (TensorRT's explicit INT8), any other from fp32.
    name = INT8_FILE if options.precision == "int8" else "model.labels.onnx"
    if name not in sidecar.artifacts:
        raise ExportError(
            "an INT8 engine is built from model.labels.int8.onnx: add --int8"
            if options.precision == "int8"
            else "a TensorRT engine is built from the labels flavour: add --flavour labels"
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
    segmenter = TensorRTSegmenter(engine, artifact, sidecar.spec)
    artifact.parity = gate.check(engine.name, segmenter, options.precision)
    sidecar.artifacts[engine.name] = artifact


def _triton(staging: Path, sidecar: Sidecar, options: ExportOptions) -> None:
    from genadapt.export.triton import write_python_model, write_repository

    graph = "model.labels.onnx"
    if graph not in sidecar.artifacts:
        raise ExportError("the Triton repository serves the labels flavour: add --flavour labels")
    name = "model.engine" if "model.engine" in sidecar.artifacts else graph
    write_repository(
        staging / "triton", staging / name, sidecar.artifacts[name], max_batch=options.max_batch
    )
    # Its model.json: the sidecar as it stands (every artifact is in it by now).
    sidecar_copy = sidecar.save(staging / "triton")
    write_python_model(
        staging / "triton",
        staging / graph,
        sidecar_copy,
        sidecar.artifacts[graph],
        max_batch=options.max_batch,
    )
    sidecar_copy.unlink()


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


def _new_sidecar(checkpoint: Checkpoint, path: Path, spec: ModelSpec) -> Sidecar:
    import onnx
    import torch

    from genadapt.runtime.ort_providers import import_onnxruntime

    return Sidecar(
        spec=spec,
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
            "onnxruntime": import_onnxruntime().__version__,
            "numpy": np.__version__,
        },
    )
