"""Write F+C as ONNX files and prove what is (and is not) inside them."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import numpy_helper

from genadapt.checkpoint import Checkpoint
from genadapt.errors import GenadaptError
from genadapt.onnx_graph import DEFAULT_OPSET, IO_NAMES, export_graph
from genadapt.sidecar import Artifact, file_sha256

TRAINING_ONLY_PREFIXES = ("G.", "D.", "generator", "discriminator", "opt_")


class ExportError(GenadaptError):
    """The export could not be written or failed a check; nothing of the user's was changed."""


def write_onnx(
    checkpoint: Checkpoint, flavour: str, path: Path, upsample: str, opset: int = DEFAULT_OPSET
) -> Artifact:
    """Export one flavour to `path`, run onnx.checker and the F+C-only check."""
    if opset < 17:
        raise ExportError(f"opset must be 17 or newer, got {opset}")
    model = checkpoint.build_model()
    data = export_graph(
        model, flavour, checkpoint.input_size, checkpoint.normalization, upsample, opset=opset
    )
    path.write_bytes(data)
    proto = onnx.load_from_string(data)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected {path.name}: {exc}") from None
    check_only_test_time_weights(proto, model_bytes(checkpoint))
    width, height = checkpoint.input_size
    k, scale = checkpoint.label_space.num_classes, 2
    in_name, out_name = IO_NAMES[flavour]
    if flavour == "logits":
        shapes = (["batch", 3, height, width], ["batch", k, height, width], "float32", "float32")
    else:
        shapes = (
            ["batch", height, width, 3],
            ["batch", scale * height, scale * width],
            "uint8",
            "uint8",
        )
    return Artifact(
        file=path.name,
        kind="onnx",
        flavour=flavour,
        sha256=file_sha256(path),
        input_name=in_name,
        input_dtype=shapes[2],
        input_shape=shapes[0],
        output_name=out_name,
        output_dtype=shapes[3],
        output_shape=shapes[1],
        precision="fp32",
        opset=opset,
    )


def model_bytes(checkpoint: Checkpoint) -> int:
    """Bytes of F+C's float tensors (parameters and the frozen upsampling kernels)."""
    return sum(t.numel() * 4 for t in checkpoint.state_dict.values() if t.is_floating_point())


def check_only_test_time_weights(proto: onnx.ModelProto, expected_bytes: int) -> None:
    """No G or D in the file: no training-only tensor names, and the float weights weigh what
    F+C's do (within 1% plus a few constants), not the extra of a generator or discriminator."""
    names = [init.name for init in proto.graph.initializer]
    leaked = [n for n in names if n.startswith(TRAINING_ONLY_PREFIXES)]
    if leaked:
        raise ExportError(f"training-only tensors in the export: {leaked[:5]}")
    float_bytes = sum(
        numpy_helper.to_array(init).nbytes
        for init in proto.graph.initializer
        if init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    )
    if not expected_bytes * 0.99 - 4096 <= float_bytes <= expected_bytes * 1.01 + 4096:
        raise ExportError(
            f"the export holds {float_bytes} bytes of weights but F+C has {expected_bytes}: "
            "something other than the test-time network was exported"
        )
