"""F+C as ONNX graphs, in the two flavours every runtime understands.

- ``logits``: float (N, 3, H, W) normalized → float logits (N, K, H, W).
- ``labels``: uint8 (N, H, W, 3) RGB at the network size → uint8 train ids at the spec's output
  size: normalization, the upsampling and the ArgMax (cast to uint8) run inside the graph, so a
  GPU runtime moves only uint8 in and out.
Static H×W, dynamic batch. Only F+C is traced: G and D do not exist at test time.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

from genadapt.imaging import Normalization
from genadapt.model import FCN8s
from genadapt.spec import ModelSpec

FLAVOURS = ("logits", "labels")
DEFAULT_OPSET = 17
BATCH = "batch"  # the name of the dynamic dimension


@dataclass(frozen=True)
class GraphIO:
    """The graph's one input and one output: names, element types and shapes (BATCH dynamic)."""

    input_name: str
    input_dtype: str
    input_shape: list[Any]
    output_name: str
    output_dtype: str
    output_shape: list[Any]


@dataclass(frozen=True)
class OnnxGraph:
    """A serialized F+C graph and what it takes and returns."""

    data: bytes
    flavour: str
    io: GraphIO
    opset: int


def graph_io(flavour: str, spec: ModelSpec, fp16: bool = False) -> GraphIO:
    width, height = spec.input_size
    if flavour == "logits":
        k = spec.label_space.num_classes
        dtype = "float16" if fp16 else "float32"
        return GraphIO(
            "input", dtype, [BATCH, 3, height, width], "logits", dtype, [BATCH, k, height, width]
        )
    out_w, out_h = spec.output_size
    return GraphIO(
        "image", "uint8", [BATCH, height, width, 3], "labels", "uint8", [BATCH, out_h, out_w]
    )


class LabelsGraph(nn.Module):
    """uint8 NHWC image → uint8 labels at `output_hw` = (H, W).

    Written for TensorRT as much as for ONNX Runtime: TensorRT accepts a uint8 tensor only as a
    network input going straight into a Cast, or as the output of a Cast from float or int32,
    so the image is cast before the transpose and the int64 ArgMax goes through int32 on its
    way to uint8. The output size is a constant, not computed from shapes at run time.
    """

    def __init__(
        self,
        model: FCN8s,
        normalization: Normalization,
        upsample: str,
        output_hw: tuple[int, int],
    ):
        super().__init__()
        self.model, self.upsample, self.output_hw = model, upsample, output_hw
        self.register_buffer("mean", torch.tensor(normalization.mean).view(1, 3, 1, 1) * 255)
        self.register_buffer(
            "inv_std", 1 / (torch.tensor(normalization.std).view(1, 3, 1, 1) * 255)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.float().permute(0, 3, 1, 2)  # Cast first: (N, H, W, 3) uint8 → (N, 3, H, W)
        logits = self.model((x - self.mean) * self.inv_std)
        if self.upsample == "bilinear":
            logits = F.interpolate(logits, self.output_hw, mode="bilinear", align_corners=False)
            labels = logits.argmax(1).to(torch.int32)  # (N, out_H, out_W)
        else:
            labels = logits.argmax(1, keepdim=True).to(torch.int32).float()
            labels = F.interpolate(labels, self.output_hw, mode="nearest")[:, 0].to(torch.int32)
        return labels.to(torch.uint8)


def export_graph(
    model: FCN8s, flavour: str, spec: ModelSpec, opset: int = DEFAULT_OPSET, fp16: bool = False
) -> OnnxGraph:
    """F+C as an ONNX graph in `flavour`, at `spec`'s input size (and, for labels, its
    normalization, upsampling and output size).

    `fp16` (logits flavour only) exports the network in half precision, input and output
    included: what a GPU runtime without its own fp16 builder (ONNX Runtime's CUDA provider)
    needs for tensor-core speed. It is traced on the model's device, so a CUDA model traces
    on the GPU."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
    if fp16 and flavour != "logits":
        raise ValueError("an fp16 graph is exported in the logits flavour only")
    io_spec = graph_io(flavour, spec, fp16)
    model = model.eval()
    if fp16:
        model = copy.deepcopy(model).half()
    if flavour == "logits":
        module: nn.Module = model
    else:
        out_w, out_h = spec.output_size
        module = LabelsGraph(model, spec.normalization, spec.upsample, (out_h, out_w)).eval()
    dtype = {"uint8": torch.uint8, "float16": torch.float16}.get(io_spec.input_dtype, torch.float32)
    device = next(model.parameters()).device
    example = torch.zeros(1, *io_spec.input_shape[1:], dtype=dtype, device=device)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter: fast, one self-contained file, opset 17 and up.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=[io_spec.input_name],
            output_names=[io_spec.output_name],
            dynamic_axes={io_spec.input_name: {0: BATCH}, io_spec.output_name: {0: BATCH}},
            do_constant_folding=True,
        )
    return OnnxGraph(buf.getvalue(), flavour, io_spec, opset)
