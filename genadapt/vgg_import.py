"""Initialize F from ImageNet VGG16 weights in a local file (nothing is downloaded).

A file has two independent properties, and the key names tell only the first:
- **Key names**: torchvision's (``features.N.*``, ``classifier.{0,3}.*``) or the Caffe
  converter's (``conv1_1.*`` … ``conv5_3.*``, ``fc6.*``, ``fc7.*``).
- **Input layout**: ``torchvision`` weights expect RGB in [0, 1] with ImageNet normalization, as
  genadapt feeds F; ``caffe`` weights expect BGR in 0..255 minus the mean pixel. The authors'
  ``vgg16_from_caffe.pth`` has torchvision's key names and Caffe's input layout.
The input layout is read from conv1_1's weights: a filter that sees 0..255 values is about
255·σ ≈ 58 times smaller than one that sees normalized values (`layout_from_statistics`), or it
is given (``--vgg-layout``); a given layout that the statistics contradict is an error. Caffe's
conv1_1 is converted for RGB normalized input by reversing its input channels and scaling them by
255·std; the remaining offset is the difference between the Caffe and ImageNet means (< 0.5 grey
levels). fc6/fc7 may be linear layers (4096×25088, 4096×4096): they are reshaped into the 7×7 and
1×1 convolutions of the fully convolutional F. Classifier layers (fc8) are ignored.
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
LAYOUTS = ("torchvision", "caffe")  # the input layout the weights were trained for
# conv1_1's weight standard deviation: torchvision's VGG16 (normalized input) and any Kaiming
# initialization are above the first bound; the same filters for 0..255 input are 255·σ ≈ 58
# times smaller, below the second. Between them the statistics decide nothing.
NORMALIZED_INPUT_MIN_STD = 0.04
PIXEL_INPUT_MAX_STD = 0.02


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


def _source_keys(key_names: str) -> list[str]:
    if key_names == "torchvision":
        convs = [f"features.{i}" for i in _TORCHVISION_CONV_INDICES]
        return [*convs, "classifier.0", "classifier.3"]
    return [*_CONV_NAMES, "fc6", "fc7"]


def detect_key_names(state: dict[str, torch.Tensor]) -> str:
    """ "torchvision" (features.N) or "caffe" (conv1_1 …): how the file names its layers."""
    if "features.0.weight" in state:
        return "torchvision"
    if "conv1_1.weight" in state:
        return "caffe"
    first = next(iter(state), "<empty>")
    raise WeightImportError(
        f"unrecognized VGG16 layout (first key {first!r}); expected torchvision "
        "('features.0.weight', …) or Caffe-converted ('conv1_1.weight', …) keys"
    )


def layout_from_statistics(conv1_weight: torch.Tensor) -> str | None:
    """The input layout conv1_1's weights were trained for, or None where they do not say."""
    std = conv1_weight.float().std().item()
    if std >= NORMALIZED_INPUT_MIN_STD:
        return "torchvision"
    if std <= PIXEL_INPUT_MAX_STD:
        return "caffe"
    return None


def resolve_layout(conv1_weight: torch.Tensor, requested: str, path: str | Path) -> str:
    """The input layout to read the file with: the requested one, checked against conv1_1's
    statistics, or ("auto") the one the statistics show."""
    if requested not in ("auto", *LAYOUTS):
        raise WeightImportError(f"layout must be 'auto' or one of {LAYOUTS}, got {requested!r}")
    seen = layout_from_statistics(conv1_weight)
    std = conv1_weight.float().std().item()
    if requested == "auto":
        if seen is None:
            raise WeightImportError(
                f"{path}: conv1_1's weights (std {std:.3g}) do not tell whether they expect "
                "RGB normalized input (torchvision) or BGR 0..255 (Caffe): give "
                "--vgg-layout torchvision or --vgg-layout caffe"
            )
        return seen
    if seen is not None and seen != requested:
        scale = "normalized RGB" if seen == "torchvision" else "BGR 0..255"
        raise WeightImportError(
            f"{path}: --vgg-layout {requested} disagrees with the file: conv1_1's weights (std "
            f"{std:.3g}) are those of a network fed {scale} ({seen} layout). The authors' "
            "vgg16_from_caffe.pth is caffe despite its torchvision key names; torchvision's "
            "vgg16-397923af.pth is torchvision"
        )
    return requested


def _convert_conv1_from_caffe(weight: torch.Tensor) -> torch.Tensor:
    # Caffe: y = W · (255·x_bgr − mean). Ours: x_rgb_norm = (x − μ)/σ, so x = σ·x_norm + μ and
    # W_rgb[c] = 255·σ_c · W_bgr[2 − c]; the constant term 255·μ − mean is ≈ 0 and dropped.
    std = torch.tensor(IMAGENET_STD, dtype=weight.dtype).view(1, 3, 1, 1)
    return weight.flip(1) * 255.0 * std


def load_vgg16_weights(model: FCN8s, path: str | Path, layout: str = "auto") -> str:
    """Copy VGG16 ImageNet weights from `path` into F; returns the input layout that was read
    ("torchvision" or "caffe"; `layout` "auto" reads it from conv1_1's statistics).

    Raises WeightImportError naming the first missing key or mismatching shape, or a layout that
    the file contradicts.
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
    key_names = detect_key_names(state)
    sources = _source_keys(key_names)
    layout = resolve_layout(state[f"{sources[0]}.weight"], layout, path)

    ours = [*_our_conv_keys(model), "fc6", "fc7"]
    own_state = model.state_dict()
    new_state: dict[str, torch.Tensor] = {}
    for src, dst in zip(sources, ours, strict=True):
        for suffix in ("weight", "bias"):
            src_key, dst_key = f"{src}.{suffix}", f"{dst}.{suffix}"
            if src_key not in state:
                raise WeightImportError(f"{path}: missing key {src_key!r} ({key_names} names)")
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
    log.info(
        "loaded VGG16 weights (%s key names, %s input) from %s into F", key_names, layout, path
    )
    return layout
