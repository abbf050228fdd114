"""Initialize F from ImageNet VGG16 weights in a local file (nothing is downloaded).

Two layouts are read:
- ``torchvision``: the state dict of ``torchvision.models.vgg16`` (``features.N.*`` and
  ``classifier.{0,3}.*``), for RGB inputs with ImageNet normalization, as genadapt uses.
- ``caffe``: the Caffe-converted VGG16 (``conv1_1.*`` … ``conv5_3.*``, ``fc6.*``, ``fc7.*``),
  trained on BGR inputs in 0..255 minus the mean. conv1_1 is converted for RGB normalized input by
  reversing its input channels and scaling them by 255·std; the remaining offset is the
  difference between the Caffe and ImageNet means (< 0.5 grey levels).
In both layouts fc6/fc7 may be linear layers (4096×25088, 4096×4096): they are reshaped into the
7×7 and 1×1 convolutions of the fully convolutional F. Classifier layers (fc8) are ignored.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from genadapt.errors import GenadaptError
from genadapt.fileio import load_weights_only
from genadapt.imaging import IMAGENET_STD
from genadapt.model import FCN8s

log = logging.getLogger(__name__)

_CONV_NAMES = (
    "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
    "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3",
)  # fmt: skip
# Indices of the convolutions inside torchvision's vgg16().features.
_TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
LAYOUTS = ("torchvision", "caffe")


class WeightImportError(GenadaptError):
    """The file is not VGG16 weights in the expected layout."""


def _our_conv_keys(model: FCN8s) -> list[str]:
    """Names of F's 13 conv layers in `model`, in VGG order (e.g. 'blocks.0.0')."""
    return [
        f"blocks.{b}.{i}"
        for b, block in enumerate(model.blocks)
        for i, layer in enumerate(block)
        if isinstance(layer, torch.nn.Conv2d)
    ]


def _source_keys(layout: str) -> list[str]:
    if layout == "torchvision":
        convs = [f"features.{i}" for i in _TORCHVISION_CONV_INDICES]
        return [*convs, "classifier.0", "classifier.3"]
    return [*_CONV_NAMES, "fc6", "fc7"]


def detect_layout(state: dict[str, torch.Tensor]) -> str:
    if "features.0.weight" in state:
        return "torchvision"
    if "conv1_1.weight" in state:
        return "caffe"
    first = next(iter(state), "<empty>")
    raise WeightImportError(
        f"unrecognized VGG16 layout (first key {first!r}); expected torchvision "
        "('features.0.weight', …) or Caffe-converted ('conv1_1.weight', …) keys"
    )


def _convert_conv1_from_caffe(weight: torch.Tensor) -> torch.Tensor:
    # Caffe: y = W · (255·x_bgr − mean). Ours: x_rgb_norm = (x − μ)/σ, so x = σ·x_norm + μ and
    # W_rgb[c] = 255·σ_c · W_bgr[2 − c]; the constant term 255·μ − mean is ≈ 0 and dropped.
    std = torch.tensor(IMAGENET_STD, dtype=weight.dtype).view(1, 3, 1, 1)
    return weight.flip(1) * 255.0 * std


def load_vgg16_weights(model: FCN8s, path: str | Path, layout: str = "auto") -> str:
    """Copy VGG16 ImageNet weights from `path` into F; returns the layout that was read.

    Raises WeightImportError naming the first missing key or mismatching shape.
    """
    if model.config.width != 1.0:
        raise WeightImportError(
            f"VGG16 weights fit width 1.0 only; this model has width {model.config.width}"
        )
    state = load_weights_only(path, WeightImportError)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightImportError(f"{path} does not hold a state dict of tensors")
    if layout == "auto":
        layout = detect_layout(state)
    elif layout not in LAYOUTS:
        raise WeightImportError(f"layout must be 'auto' or one of {LAYOUTS}, got {layout!r}")

    ours = [*_our_conv_keys(model), "fc6", "fc7"]
    own_state = model.state_dict()
    new_state: dict[str, torch.Tensor] = {}
    for src, dst in zip(_source_keys(layout), ours, strict=True):
        for suffix in ("weight", "bias"):
            src_key, dst_key = f"{src}.{suffix}", f"{dst}.{suffix}"
            if src_key not in state:
                raise WeightImportError(f"{path}: missing key {src_key!r} ({layout} layout)")
            tensor = state[src_key].float()
            expected = own_state[dst_key].shape
            if tensor.dim() == 2 and len(expected) == 4:  # fc6/fc7 stored as linear layers
                if tensor.numel() != expected.numel():
                    raise WeightImportError(
                        f"{path}: {src_key!r} has shape {tuple(tensor.shape)}, "
                        f"which cannot be reshaped to {tuple(expected)}"
                    )
                tensor = tensor.reshape(expected)
            if tensor.shape != expected:
                raise WeightImportError(
                    f"{path}: {src_key!r} has shape {tuple(tensor.shape)}, "
                    f"expected {tuple(expected)}"
                )
            new_state[dst_key] = tensor
    if layout == "caffe":
        w_key = f"{ours[0]}.weight"
        new_state[w_key] = _convert_conv1_from_caffe(new_state[w_key])
    model.load_state_dict(new_state, strict=False)
    log.info("loaded VGG16 %s weights from %s into F", layout, path)
    return layout
