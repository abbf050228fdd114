"""G's pixel (i, j) must be the input's pixel (i, j), with either padding of F.

A misaligned G (e.g. the whole 100-padded frame resized to the input) corrupts the L1 target,
D's pixel labels and the α term, while every shape still looks right. So the test follows a
marked pixel through F and G wired as a probe: every layer passes channel 0 through a centred
kernel (identity convolutions, bilinear transposed convolutions, residual branches at zero),
so that the brightest output pixel is where the network's geometry puts the mark.
"""

import pytest
import torch
from torch import nn

from genadapt.model import ModelConfig, bilinear_kernel, build_model
from genadapt.trainer.networks import Generator, ResBlock


def _centre_tap(conv: nn.Conv2d, in_channels: tuple[int, ...] = (0,)) -> None:
    """channel 0 of the output = the named input channels at the kernel's centre."""
    with torch.no_grad():
        conv.weight.zero_()
        kh, kw = conv.weight.shape[-2:]
        for c in in_channels:
            conv.weight[0, c, kh // 2, kw // 2] = 1.0
        if conv.bias is not None:
            conv.bias.zero_()


def _bilinear_tap(deconv: nn.ConvTranspose2d, in_channels: tuple[int, ...] = (0,)) -> None:
    """channel 0 of the output = the named input channels upsampled with a bilinear kernel."""
    k = deconv.weight.shape[-1]
    kernel = bilinear_kernel(1, k)[0, 0] if k % 2 == 0 else torch.zeros(k, k)
    if k % 2:  # an odd kernel with stride 1 (G's first layer) is an exact shift: its centre
        kernel[k // 2, k // 2] = 1.0
    with torch.no_grad():
        deconv.weight.zero_()
        for c in in_channels:
            deconv.weight[c, 0] = kernel
        if deconv.bias is not None:
            deconv.bias.zero_()


def probe(padding: str) -> tuple[nn.Module, Generator]:
    """F and G wired to carry channel 0 from the input to G's output along G's finest path:
    the pool3 skip it concatenates last (1/8 cells). Through fc7, a bilinear probe would be
    biased by half a cell per stride-2 stage with an odd kernel (k3, k5), which learned weights
    absorb; for the probe it would only blur the test."""
    config = ModelConfig(num_classes=3, width=0.0625, padding=padding)
    f, g = build_model(config).eval(), Generator(config).eval()
    for conv in [m for m in f.blocks.modules() if isinstance(m, nn.Conv2d)] + [f.fc6, f.fc7]:
        _centre_tap(conv)
    for block in [m for m in g.modules() if isinstance(m, ResBlock)]:
        with torch.no_grad():
            block.body[0].weight.zero_()  # the residual branch adds nothing
    # The transposed convolutions that read a concatenation read one half of it.
    pool3_half = config.channels(256)
    skips = {id(g.stage2[0]): (0,), id(g.stage3[0][0]): (pool3_half,)}
    for deconv in [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]:
        _bilinear_tap(deconv, skips.get(id(deconv), (0,)))
    return f, g


def offsets(f: nn.Module, g: Generator, height: int = 128, width: int = 192) -> torch.Tensor:
    """(found − marked) positions of marks over the image, as (N, 2) rows and columns."""
    rows = []
    for i in range(6, height - 6, 7):
        j = (i * 3 + 10) % (width - 12) + 6  # marks on a slanted line, every cell phase
        x = torch.zeros(1, 3, height, width)
        x[0, 0, i, j] = 1.0
        with torch.no_grad():
            out = g(f.embed(x), (height, width))[0, 0]
        assert out.shape == (height, width)
        found = divmod(int(out.argmax()), width)
        rows.append((found[0] - i, found[1] - j))
    return torch.tensor(rows, dtype=torch.float32)


@pytest.mark.parametrize("padding", ["pad1", "pad100"])
def test_generator_puts_a_marked_pixel_back_where_it_was(padding):
    error = offsets(*probe(padding))
    # Max-pooling quantizes a mark to its 8-px cell, so each mark may miss by up to one cell,
    # and on average by half of one; the whole 100-padded frame resized to the input (the old
    # G) misses by up to 30 px at this size, 100 px at the paper's.
    assert error.abs().max() <= 8, error
    assert error.mean(0).abs().max() <= 4.5, error.mean(0)


def test_probe_catches_a_shift():
    # The probe itself: the same wiring with G's crop moved by 12 px fails the test above.
    f, g = probe("pad100")
    g.frame_offset += 12
    assert offsets(f, g).mean(0).abs().max() > 10
