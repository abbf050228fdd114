"""Write F+C as ONNX files and prove what is (and is not) inside them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx

from genadapt.checkpoint import Checkpoint
from genadapt.errors import GenadaptError
from genadapt.onnx_graph import OnnxGraph
from genadapt.sidecar import Artifact
from genadapt.spec import Precision

TRAINING_ONLY_PREFIXES = ("G.", "D.", "generator", "discriminator", "opt_")


class ExportError(GenadaptError):
    """The export could not be written or failed a check; nothing of the user's was changed."""


def write_onnx(
    graph: OnnxGraph, path: Path, weight_elements: int, precision: Precision = "fp32"
) -> Artifact:
    """Write `graph` to `path` after onnx.checker and the F+C-only check (`weight_elements`:
    how many numbers F+C's weights hold); its artifact description comes from the graph's I/O."""
    if graph.opset < 17:
        raise ExportError(f"opset must be 17 or newer, got {graph.opset}")
    proto = onnx.load_from_string(graph.data)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected {path.name}: {exc}") from None
    check_only_test_time_weights(proto, weight_elements)
    path.write_bytes(graph.data)
    return Artifact(
        file=path.name,
        kind="onnx",
        flavour=graph.flavour,
        sha256=hashlib.sha256(graph.data).hexdigest(),
        **asdict(graph.io),
        precision=precision,
        opset=graph.opset,
    )


def model_elements(checkpoint: Checkpoint) -> int:
    """Numbers in F+C's float tensors (parameters and the frozen upsampling kernels)."""
    return sum(t.numel() for t in checkpoint.state_dict.values() if t.is_floating_point())


# Weights as an export may store them: float, or quantized with int32 biases.
WEIGHT_TYPES = (
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.INT8,
    onnx.TensorProto.UINT8,
    onnx.TensorProto.INT32,
)


def check_only_test_time_weights(proto: onnx.ModelProto, expected_elements: int) -> None:
    """No G or D in the file: no training-only tensor names, and the weights hold as many
    numbers as F+C's do (within 1% plus a few constants, quantization scales included), not the
    extra of a generator or discriminator."""
    names = [init.name for init in proto.graph.initializer]
    leaked = [n for n in names if n.startswith(TRAINING_ONLY_PREFIXES)]
    if leaked:
        raise ExportError(f"training-only tensors in the export: {leaked[:5]}")
    weights = [init for init in proto.graph.initializer if init.data_type in WEIGHT_TYPES]
    elements = sum(int(np.prod(init.dims)) for init in weights)
    if not expected_elements * 0.99 - 4096 <= elements <= expected_elements * 1.01 + 4096:
        raise ExportError(
            f"the export holds {elements} weight values but F+C has {expected_elements}: "
            "something other than the test-time network was exported"
        )
