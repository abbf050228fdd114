"""G (generator) and D (discriminators): training-only networks, never exported.

Channel counts follow docs/method.md at width 1.0 and scale with the same `width` as F.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

from genadapt.model import ModelConfig

NUM_DOMAINS = 4  # D's domain head: 0 src-real, 1 src-fake, 2 tgt-real, 3 tgt-fake
SRC_REAL, SRC_FAKE, TGT_REAL, TGT_FAKE = range(NUM_DOMAINS)
# Where the input's pixel (0, 0) lies in G's output with the 100-padded F: the authors' crop.
PAD100_OFFSET = 100


class ResBlock(nn.Module):
    """x + Dropout(act(IN(conv3×3(x)))): G uses ReLU without bias, D LeakyReLU(0.2) with bias."""

    def __init__(self, channels: int, leaky: bool = False, bias: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            nn.InstanceNorm2d(channels),
            nn.LeakyReLU(0.2, inplace=True) if leaky else nn.ReLU(inplace=True),
            nn.Dropout(0.5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _up(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, out_pad: int = 0):
    """ConvT + IN + ReLU + 2 ResBlocks: one stage of G."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, output_padding=out_pad),
        nn.InstanceNorm2d(out_ch),
        nn.ReLU(inplace=True),
        ResBlock(out_ch),
        ResBlock(out_ch),
    )


def _fit(x: torch.Tensor, size: tuple[int, int], top: int = 0, left: int = 0) -> torch.Tensor:
    """The (h, w) window of `x` whose origin is (top, left), zero-padded at the bottom and right
    where `x` is short. Never a resize: G's pixel (i, j) must stay on the input's pixel (i, j).

    With pad1 and sizes divisible by 32 every stage lands exactly. With pad100, ceil-mode pooling
    can make a decoder stage a pixel shorter than the skip map it joins; the extra pixels of a
    ceil-mode map are at its bottom and right, so the origins agree and padding there is exact.
    """
    h, w = size
    x = x[..., top : top + h, left : left + w]
    short_h, short_w = h - x.shape[-2], w - x.shape[-1]
    return F.pad(x, (0, short_w, 0, short_h)) if short_h or short_w else x


class Generator(nn.Module):
    """G: (pool3, pool4, fc7) of F → an image in [0, 1] at the input size."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config.channels
        pad1 = config.padding == "pad1"
        fc7_pad = 3 if pad1 else 0  # undo fc6's 7×7 (valid in pad100)
        # pad1 doubles exactly (output padding 1); pad100 has the authors' layers (none), whose
        # maps are the odd-sized ones of the padded frame.
        op = 1 if pad1 else 0
        self.stage1 = nn.Sequential(
            _up(c(4096), c(256), 7, 1, fc7_pad), _up(c(256), c(512), 3, 2, 1, op)
        )  # (B, 512w, H/16, W/16), then pool4 is concatenated
        self.stage2 = _up(c(512) * 2, c(256), 3, 2, 1, op)  # (B, 256w, H/8), then pool3
        self.stage3 = nn.Sequential(
            _up(c(256) * 2, c(128), 5, 2, 2, op), _up(c(128), c(64), 5, 2, 2, op)
        )  # (B, 64w, H/2, W/2)
        if pad1:
            self.to_image = nn.ConvTranspose2d(c(64), 3, 4, 2, 1)  # (B, 3, H, W)
        else:
            # The authors' last layer is ConvTranspose(k8, s2, padding 100): the decoder covers
            # conv1_1's 100-padded frame, and that padding crops its centre. The crop is made
            # explicit here so that every input size, not only 640×320, lands in register.
            self.to_image = nn.ConvTranspose2d(c(64), 3, 8, 2, 0)
        self.frame_offset = 0 if pad1 else PAD100_OFFSET
        init_gan_weights(self)

    def forward(
        self, features: tuple[torch.Tensor, torch.Tensor, torch.Tensor], size: tuple[int, int]
    ) -> torch.Tensor:
        pool3, pool4, fc7 = features
        x = _fit(self.stage1(fc7), pool4.shape[-2:])
        x = _fit(self.stage2(torch.cat([x, pool4], 1)), pool3.shape[-2:])
        x = self.to_image(self.stage3(torch.cat([x, pool3], 1)))
        offset = self.frame_offset
        return torch.sigmoid(_fit(x, size, top=offset, left=offset))


class PatchDiscriminator(nn.Module):
    """D: image in [0, 1] → domain logits (B, 4, H/8, W/8) and pixel-class logits (B, K, H/8, W/8).

    With `global_domain` the domain head is averaged to one 4-way output per image (the paper's
    "D without patches" ablation); the pixel-labeling head stays dense. Without `pixel_head` D
    is the single domain branch of the paper's "without auxiliary loss" ablation (Table 4(b)),
    and its second output is None.
    """

    def __init__(
        self, config: ModelConfig, global_domain: bool = False, pixel_head: bool = True
    ) -> None:
        super().__init__()
        ch = config.channels(128)
        blocks = [ResBlock(ch, leaky=True, bias=True) for _ in range(9)]
        self.body = nn.Sequential(
            nn.Conv2d(3, ch, 4, stride=2, padding=2),
            nn.InstanceNorm2d(ch),
            nn.LeakyReLU(0.2, inplace=True),
            *blocks[0:3],
            nn.MaxPool2d(2),
            *blocks[3:6],
            nn.MaxPool2d(2),
            *blocks[6:9],
        )
        self.domain = nn.Conv2d(ch, NUM_DOMAINS, 3, padding=1)
        self.classes = nn.Conv2d(ch, config.num_classes, 3, padding=1) if pixel_head else None
        self.global_domain = global_domain
        init_gan_weights(self)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.body(image)
        domain = self.domain(h)
        if self.global_domain:
            domain = domain.mean(dim=(2, 3), keepdim=True)  # (B, 4, 1, 1)
        return domain, self.classes(h) if self.classes is not None else None


def patch_grid_pixels(height: int, width: int) -> int:
    """N_D: how many outputs the patch D has for an image (its 4×4/2 stem, then two pools)."""
    return ((height // 2 + 1) // 4) * ((width // 2 + 1) // 4)


class FeatureDiscriminator(nn.Module):
    """The "feature-space D" ablation: a domain classifier on F's fc7, no generator."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        in_ch, ch = config.channels(4096), config.channels(256)
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ch, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ch, NUM_DOMAINS, 1),
        )
        init_gan_weights(self)

    def forward(self, fc7: torch.Tensor) -> torch.Tensor:
        return self.net(fc7)


def init_gan_weights(module: nn.Module) -> None:
    """docs/method.md: conv weights N(0, 0.02), biases U(−0.01, 0.01)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.01, 0.01)
