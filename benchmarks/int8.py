"""INT8 segmenters for benchmarks: a checkpoint's labels graph quantized as genadapt-export
--int8 does it, calibrated on a few built-in scenes (timings do not depend on calibration)."""

from __future__ import annotations

from genadapt.checkpoint import Checkpoint
from genadapt.export.quantize import Calibration, quantize_labels_graph
from genadapt.onnx_graph import export_graph
from genadapt.runtime.onnx_backend import OnnxSegmenter


def int8_segmenter(checkpoint: Checkpoint, images: int = 4) -> OnnxSegmenter:
    spec = checkpoint.spec.replace(precision="int8")
    graph = export_graph(checkpoint.build_model(), "labels", checkpoint.spec)
    data, _ = quantize_labels_graph(
        graph.data, spec, graph.io.input_name, Calibration(method="minmax", count=images)
    )
    return OnnxSegmenter(data, spec, "labels")
