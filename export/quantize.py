"""INT8 for CPUs: the labels graph quantized statically to QDQ form with ONNX Runtime.

Weights are per-channel signed int8, activations unsigned int8 (what x86 VNNI kernels want), and
the activation ranges come from calibration images. Left in fp32: the input normalization; the
first convolution (conv1_1, 0.4% of the FLOPs), which alone took label agreement from 95.2% to
98.9% on the trained demo model (README, "INT8"); the three score layers that make the logits
(their ranges decide the argmax); the ×2/×8 upsampling and everything after it. The same QDQ
graph is what TensorRT's explicit INT8 mode reads.
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from genadapt.datasets import SegmentationDataset
from genadapt.export.onnx_export import ExportError
from genadapt.imaging import network_input, resize_rgb
from genadapt.scenes.generate import SceneSpec, make_scene
from genadapt.spec import ModelSpec

log = logging.getLogger(__name__)
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# Layers kept in float: name fragments of the exported F+C graph's nodes.
KEEP_FLOAT = ("score_fr", "score_pool4", "score_pool3", "upscore")
KEEP_FLOAT_OPS = {"Resize", "ArgMax", "Cast", "Sub", "Mul", "Div", "Transpose", "Slice"}


@dataclass(frozen=True)
class Calibration:
    """Where calibration images come from and how ranges are taken from them."""

    method: str = "minmax"  # percentile measured no better on the demo model, and slower
    count: int = 32
    dataset_kind: str | None = None  # None: the built-in target-look scenes
    dataset_root: str | None = None
    seed: int = 4242  # another seed than the parity gate's scenes: calibrate ≠ judge

    def describe(self) -> dict:
        source = (
            f"{self.dataset_kind}:{self.dataset_root}" if self.dataset_kind else "built-in scenes"
        )
        return {"method": self.method, "images": self.count, "source": source}


def calibration_images(spec: ModelSpec, calibration: Calibration) -> Iterator[np.ndarray]:
    """uint8 (H, W, 3) images at the network size, as the labels graph takes them."""
    if calibration.dataset_kind:
        dataset = SegmentationDataset(
            calibration.dataset_kind, calibration.dataset_root, label_space=spec.label_space
        )
        step = max(1, len(dataset) // calibration.count)
        for index in list(range(0, len(dataset), step))[: calibration.count]:
            image_path, _ = dataset.pairs[index]
            # Built as every command builds a network input.
            yield network_input(image_path.read_bytes(), spec.input_size)
        return
    for i in range(calibration.count):
        rgb, _ = make_scene(SceneSpec("target", "train", i, spec.output_size, calibration.seed))
        yield resize_rgb(rgb, spec.input_size)


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over our images, one at a time."""

    def __init__(self, input_name: str, images: Iterator[np.ndarray]) -> None:
        self.input_name, self.images = input_name, images

    def get_next(self) -> dict | None:
        image = next(self.images, None)
        return None if image is None else {self.input_name: image[None]}

    def rewind(self) -> None:  # one pass is all quantize_static takes
        pass


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes left in fp32: the first convolution, the score layers, the upsampling and what
    follows it, the input normalization and the shape plumbing."""
    keep = []
    after_upsampling = seen_conv = False
    for node in model.graph.node:
        after_upsampling = after_upsampling or "upscore" in node.name
        named = any(fragment in node.name for fragment in KEEP_FLOAT)
        first_conv = node.op_type == "Conv" and not seen_conv
        seen_conv = seen_conv or node.op_type == "Conv"
        if after_upsampling or named or first_conv or node.op_type in KEEP_FLOAT_OPS:
            keep.append(node.name)
    return keep


def quantize_labels_graph(
    fp32_graph: bytes, spec: ModelSpec, input_name: str, calibration: Calibration
) -> tuple[bytes, dict]:
    """The QDQ INT8 twin of an fp32 labels graph, and a description of how it was made."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration.method not in CALIBRATION_METHODS:
        raise ExportError(
            f"calibration method must be one of {CALIBRATION_METHODS}, got {calibration.method!r}"
        )
    if calibration.count < 1:
        raise ExportError("calibration needs at least one image")
    method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[calibration.method]
    with tempfile.TemporaryDirectory(prefix="genadapt-int8-") as tmp, _quiet_root_logger():
        raw, source, target = (Path(tmp) / n for n in ("raw.onnx", "fp32.onnx", "int8.onnx"))
        raw.write_bytes(fp32_graph)
        # ONNX Runtime's recommended pre-processing: folds the exporter's Identity nodes, so that
        # every bias is an initializer the quantizer can see, and infers shapes.
        quant_pre_process(raw, source, skip_symbolic_shape=True)
        excluded = float_nodes(onnx.load(str(source)))
        log.info("calibrating INT8 on %d images (%s)", calibration.count, calibration.method)
        quantize_static(
            source,
            target,
            _Reader(input_name, calibration_images(spec, calibration)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            calibrate_method=method,
            calibration_providers=["CPUExecutionProvider"],
            extra_options={"CalibTensorRangeSymmetric": False, "CalibMovingAverage": False},
        )
        data = target.read_bytes()
    description = {
        **calibration.describe(),
        "format": "QDQ",
        "weights": "int8 per channel",
        "activations": "uint8",
        "float_nodes": len(excluded),
    }
    return data, description


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantizer logs advice through the root logger and prints its histogram
    settings: keep the one to errors and the other out of the user's output."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
