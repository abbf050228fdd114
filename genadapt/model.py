"""The test-time network of the paper: F (VGG16 embedding) + C (FCN-8s classifier).

F maps an image to (pool3, pool4, fc7); C fuses them into logits at the input size. During
training the generator G reads the same three maps, which is why `embed` and `classify` are
separate; at test time only `forward` = classify(embed(x)) exists, with no G or D overhead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

Padding = Literal["pad1", "pad100"]
PADDINGS: tuple[str, ...] = ("pad1", "pad100")
ARCH = "fcn8s-vgg16"

# VGG16 conv channels per block, before width scaling.
_VGG_BLOCKS: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (512, 512, 512),
)
_FC_CHANNELS = 4096


@dataclass(frozen=True)
class ModelConfig:
    """What builds F+C; stored in every checkpoint so that the file says what it is."""

    num_classes: int = 19
    width: float = 1.0  # channel multiplier: 1.0 is the paper's VGG16, 0.25 suits CPU runs
    padding: Padding = "pad1"  # "pad100" is the original FCN-8s (+50% FLOPs, crops)
    arch: str = ARCH

    def __post_init__(self) -> None:
        if self.arch != ARCH:
            raise ValueError(f"unknown architecture {self.arch!r}; genadapt builds {ARCH!r}")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {self.padding!r}")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4], got {self.width}")
        if self.num_classes < 1 or self.num_classes > 255:
            raise ValueError(f"num_classes must be in 1..255, got {self.num_classes}")

    def channels(self, base: int) -> int:
        return max(1, round(base * self.width))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return cls(
            num_classes=int(data["num_classes"]),
            width=float(data["width"]),
            padding=data["padding"],
            arch=data.get("arch", ARCH),
        )


def check_input_size(height: int, width: int, padding: str) -> None:
    """pad1 needs sizes divisible by 32 (no crops in the head); raise a clear error otherwise."""
    if padding == "pad1" and (height % 32 or width % 32):
        raise ValueError(
            f"padding 'pad1' needs height and width divisible by 32, got {width}x{height}; "
            "resize the input (e.g. 1024x512) or use padding 'pad100'"
        )


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """(channels, 1, k, k) bilinear interpolation kernel, as FCN initializes its upsamplers."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = np.ogrid[:kernel_size, :kernel_size]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    kernel = torch.from_numpy(filt.astype(np.float32))
    return kernel.expand(channels, 1, kernel_size, kernel_size).clone()


class BilinearUpsample(nn.Module):
    """A transposed convolution fixed to bilinear interpolation (never trained).

    FCN-8s initializes its deconvolutions as bilinear kernels and keeps them frozen; a kernel that
    is zero off the diagonal is a per-channel (grouped) transposed convolution, so the weight is
    a (K, 1, k, k) buffer: saved with the model, but not a parameter that an optimizer could touch.

    It is computed as what it equals, not as a convolution: the bilinear kernel of size 2f,
    stride f, puts output pixel o at source coordinate (o + padding + 0.5) / f - 1, weighted by
    the tent 1 - |x - i| and with zeros beyond the edges. That is `F.interpolate` (bilinear,
    half-pixel) of the input padded with one zero on each side, cropped. A grouped transposed
    convolution over K = 19 channels has no fast kernel in fp16 channels-last (cuDNN, ONNX
    Runtime); interpolation is a memory-bound pass. `deconvolution` keeps the convolution as the
    reference the tests hold this to.
    """

    weight: torch.Tensor

    def __init__(self, channels: int, factor: int, padding: int) -> None:
        super().__init__()
        self.channels, self.stride, self.padding = channels, factor, padding
        self.register_buffer("weight", bilinear_kernel(channels, 2 * factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The padded input interpolates to (n + 2)·f cells, of which the transposed convolution's
        # (n + 1)·f - 2p lie at an offset of p + f/2 from both ends: a crop written without the
        # input's shape, so that an exported graph has no shape arithmetic (which ONNX Runtime
        # places on the CPU, with copies around it).
        trim = self.padding + self.stride // 2
        up = F.interpolate(F.pad(x, (1, 1, 1, 1)), scale_factor=self.stride, mode="bilinear")
        return up[..., trim:-trim, trim:-trim]

    def deconvolution(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(
            x, self.weight, stride=self.stride, padding=self.padding, groups=self.channels
        )


def _vgg_blocks(config: ModelConfig) -> nn.ModuleList:
    blocks = nn.ModuleList()
    in_ch = 3
    for block_index, block in enumerate(_VGG_BLOCKS):
        layers: list[nn.Module] = []
        for conv_index, base in enumerate(block):
            out_ch = config.channels(base)
            pad = 100 if (config.padding == "pad100" and block_index == conv_index == 0) else 1
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=pad), nn.ReLU(inplace=True)]
            in_ch = out_ch
        layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
        blocks.append(nn.Sequential(*layers))
    return blocks


class FCN8s(nn.Module):
    """F+C: VGG16 embedding F (`embed`) and FCN-8s classifier C (`classify`)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        k = config.num_classes
        ch3, ch4, ch_fc = config.channels(256), config.channels(512), config.channels(_FC_CHANNELS)
        # F: conv1_1 … pool5, then fc6 (7×7) and fc7 (1×1) as convolutions.
        self.blocks = _vgg_blocks(config)
        fc6_pad = 3 if config.padding == "pad1" else 0  # pad1 keeps 1/32; pad100 is the original
        self.fc6 = nn.Conv2d(config.channels(512), ch_fc, 7, padding=fc6_pad)
        self.fc7 = nn.Conv2d(ch_fc, ch_fc, 1)
        self.drop6, self.drop7 = nn.Dropout2d(0.5), nn.Dropout2d(0.5)
        # C: FCN-8s head. Score layers start at zero, upsamplers are frozen bilinear kernels.
        self.score_fr = nn.Conv2d(ch_fc, k, 1)
        self.score_pool4 = nn.Conv2d(ch4, k, 1)
        self.score_pool3 = nn.Conv2d(ch3, k, 1)
        pad = 1 if config.padding == "pad1" else 0
        self.upscore2 = BilinearUpsample(k, 2, pad)
        self.upscore_pool4 = BilinearUpsample(k, 2, pad)
        self.upscore8 = BilinearUpsample(k, 8, 4 * pad)
        # F from scratch: He init as torchvision's VGG (no BatchNorm, so scale matters); replaced
        # by ImageNet weights when they are given (genadapt.vgg_import).
        for conv in [m for m in self.blocks.modules() if isinstance(m, nn.Conv2d)] + [
            self.fc6,
            self.fc7,
        ]:
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        for score in (self.score_fr, self.score_pool4, self.score_pool3):
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """F: normalized images (B, 3, H, W) → pool3 (1/8), pool4 (1/16), fc7 (1/32)."""
        check_input_size(x.shape[-2], x.shape[-1], self.config.padding)
        h = self.blocks[1](self.blocks[0](x))
        pool3 = self.blocks[2](h)  # (B, 256w, H/8, W/8)
        pool4 = self.blocks[3](pool3)  # (B, 512w, H/16, W/16)
        pool5 = self.blocks[4](pool4)  # (B, 512w, H/32, W/32)
        fc6 = self.drop6(F.relu(self.fc6(pool5), inplace=True))
        fc7 = self.drop7(F.relu(self.fc7(fc6), inplace=True))  # (B, 4096w, H/32, W/32)
        return pool3, pool4, fc7

    def classify(
        self,
        features: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        size: tuple[int, int],
    ) -> torch.Tensor:
        """C: (pool3, pool4, fc7) → logits (B, K, H, W) at the input size `size` = (H, W)."""
        pool3, pool4, fc7 = features
        upscore2 = self.upscore2(self.score_fr(fc7))  # (B, K, H/16, W/16)
        fuse4 = upscore2 + self._crop(self.score_pool4(pool4), upscore2, 5)
        upscore4 = self.upscore_pool4(fuse4)  # (B, K, H/8, W/8)
        fuse3 = upscore4 + self._crop(self.score_pool3(pool3), upscore4, 9)
        logits = self.upscore8(fuse3)  # (B, K, H, W)
        if self.config.padding == "pad100":
            logits = logits[:, :, 31 : 31 + size[0], 31 : 31 + size[1]]
        return logits

    def _crop(self, x: torch.Tensor, like: torch.Tensor, offset: int) -> torch.Tensor:
        # Only the 100-pad variant needs the original FCN crops; pad1 maps align exactly.
        if self.config.padding == "pad1":
            return x
        h, w = like.shape[-2:]
        return x[:, :, offset : offset + h, offset : offset + w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B, 3, H, W) → logits (B, K, H, W)."""
        return self.classify(self.embed(x), (x.shape[-2], x.shape[-1]))


def build_model(config: ModelConfig) -> FCN8s:
    """Factory used by every stage so that a checkpoint's config always rebuilds the same net."""
    return FCN8s(config)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
