"""Mutation fuzzing of the image decoder: whatever bytes arrive, decode_image returns an RGB
array or raises an ImageDecodeError (the service's 422), never anything else (its 500).

Bounded and seeded: a fixed number of mutants of valid images in every format genadapt reads,
drawn by Hypothesis with derandomize=True, so a failure reproduces."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from genadapt.imaging import ImageDecodeError, decode_image


def seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    variants = [
        (rgb, "JPEG", {}),
        (rgb, "PNG", {}),
        (rgb.convert("RGBA"), "PNG", {}),
        (rgb.convert("P"), "PNG", {}),
        (rgb.convert("L"), "PNG", {}),
        (Image.fromarray(rng.integers(0, 65535, (24, 32), dtype=np.uint16)), "PNG", {}),
        (rgb, "WEBP", {}),
        (rgb, "WEBP", {"lossless": True}),
        (rgb, "BMP", {}),
        (rgb, "TIFF", {}),
        (rgb.convert("P"), "GIF", {}),
        (rgb.convert("CMYK"), "JPEG", {}),
    ]
    out = []
    for image, fmt, options in variants:
        buf = io.BytesIO()
        image.save(buf, fmt, **options)
        out.append(buf.getvalue())
    return out


SEEDS = seeds()


@st.composite
def mutants(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "insert"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            data[at : at + draw(st.integers(1, 16))] = draw(st.binary(max_size=16))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


@settings(
    max_examples=3000,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutants())
def test_any_bytes_decode_or_raise_a_decode_error(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libtiff and friends complain on stderr and in warnings
        try:
            rgb = decode_image(data, draft_size=(16, 8))
        except ImageDecodeError:
            return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff\xe0\x01\x00JFIF\x00",  # the 11-byte JPEG that once got a 500
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 10,  # 26 bytes of PNG header
        b"BM" + b"\x00" * 12 + b"\x28\x00\x00\x00" + b"\xff" * 20,  # a bad BMP header
        b"RIFF\x20\x00\x00\x00WEBPVP8 " + b"\x00" * 20,  # a corrupt WebP
    ],
)
def test_the_reported_headers_are_decode_errors(data):
    with pytest.raises(ImageDecodeError):
        decode_image(data)


@pytest.mark.parametrize("bigtiff", [False, True], ids=["classic", "bigtiff"])
def test_every_tiff_tag_in_every_field_type_decodes_or_is_a_decode_error(bigtiff):
    # Found by a mutator: StripOffsets as LONG8 with a huge value made Pillow raise
    # OverflowError, which escaped as a 500. Every tag of a minimal TIFF, in every field type
    # (LONG8, SLONG8, IFD8 and RATIONAL among them), with values at the integer limits.
    from tiff_builder import FIELD_TYPES, MINIMAL, build_tiff

    outcomes = {"decoded": 0, "refused": 0}
    for tag, _, _ in MINIMAL:
        for kind in FIELD_TYPES:
            for value in (0, 1, 7, 2**31 + 3, 2**63 + 5, 2**64 - 1):
                try:
                    decode_image(build_tiff({tag: (kind, value)}, bigtiff))
                    outcomes["decoded"] += 1
                except ImageDecodeError:
                    outcomes["refused"] += 1
    assert outcomes["decoded"] > 0 and outcomes["refused"] > 0  # the builder makes real TIFFs


def test_the_overflowing_strip_offset_and_multipage_tiffs():
    from tiff_builder import STRIP_OFFSETS, build_tiff

    with pytest.raises(ImageDecodeError):
        decode_image(build_tiff({STRIP_OFFSETS: (16, 2**63 + 5)}, bigtiff=True))  # was a 500
    assert decode_image(build_tiff(pages=3)).shape == (4, 4, 3)  # the first page is read
    assert decode_image(build_tiff(pages=2, bigtiff=True)).shape == (4, 4, 3)
