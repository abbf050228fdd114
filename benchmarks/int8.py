"""INT8 segmenters for benchmarks: a checkpoint's labels graph quantized as genadapt-export
--int8 does it, calibrated on a few built-in scenes (timings do not depend on calibration)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

from genadapt.checkpoint import Checkpoint
from genadapt.export.quantize import Calibration, quantize_labels_graph
from genadapt.onnx_graph import export_graph
from genadapt.runtime.onnx_backend import OnnxSegmenter
from genadapt.sidecar import Artifact, Sidecar


def int8_segmenter(checkpoint: Checkpoint, images: int = 4) -> OnnxSegmenter:
    data, _, _ = _quantized(checkpoint, images)
    return OnnxSegmenter(data, checkpoint.spec.replace(precision="int8"), "labels")


def write_int8_model(checkpoint: Checkpoint, folder: Path, images: int = 4) -> Path:
    """model.labels.int8.onnx and its model.json in `folder`, for a service to time. Not gated
    (random weights have near-ties everywhere) and marked so in the sidecar: for timing only."""
    data, graph, how = _quantized(checkpoint, images)
    path = folder / "model.labels.int8.onnx"
    path.write_bytes(data)
    artifact = Artifact(
        file=path.name,
        kind="onnx",
        flavour="labels",
        sha256=hashlib.sha256(data).hexdigest(),
        **asdict(graph.io),
        precision="int8",
        opset=graph.opset,
        quantization=how,
        parity={"passed": False, "note": "benchmark timing only: not gated"},
    )
    sidecar = Sidecar(checkpoint.spec, {"file": "random weights"}, {}, {path.name: artifact})
    sidecar.save(folder)
    return path


def _quantized(checkpoint: Checkpoint, images: int):
    spec = checkpoint.spec.replace(precision="int8")
    graph = export_graph(checkpoint.build_model(), "labels", checkpoint.spec)
    calibration = Calibration(method="minmax", count=images)
    data, how = quantize_labels_graph(graph.data, spec, graph.io.input_name, calibration)
    return data, graph, how
