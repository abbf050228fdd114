"""The TurboJPEG path decodes the very pixels Pillow decodes, or steps aside.

genadapt-predict, genadapt-eval and the service all read images through `decode_image`, so
their labels agree whatever decoder runs; these tests hold the faster decoder to Pillow's
pixels, so that a model also sees what it saw before the decoder changed."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageOps

from genadapt import imaging, turbo_jpeg
from genadapt.imaging import ImageDecodeError


def _photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, edges and noise: enough for chroma upsampling and the DCT to matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x / width * 255, y / height * 255, (x + y) % 64 * 4], axis=2)
    rgb[height // 3 : height // 2, width // 4 : width // 2] = (250, 20, 30)
    rgb += rng.normal(0, 12, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _jpeg(rgb: np.ndarray, orientation: int | None = None, **save) -> bytes:
    img = Image.fromarray(rgb)
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        save["exif"] = exif.tobytes()
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **save)
    return buf.getvalue()


def _pillow(data: bytes, draft: tuple[int, int] | None) -> np.ndarray:
    """The Pillow path: what `decode_image` returned before TurboJPEG."""
    with Image.open(io.BytesIO(data)) as img:
        if draft is not None:
            img.draft("RGB", imaging._draft_request(img, draft))
        img.load()
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


needs_turbo = pytest.mark.skipif(not turbo_jpeg.available(), reason="simplejpeg not installed")


@needs_turbo
@pytest.mark.parametrize("subsampling", [0, 1, 2])  # 4:4:4, 4:2:2, 4:2:0
@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("size", [(640, 320), (333, 201)])  # odd sizes: ceil at every scale
@pytest.mark.parametrize("draft", [None, (320, 160), (160, 80), (80, 40), (40, 20), (300, 300)])
def test_turbo_decodes_pillows_pixels(subsampling, progressive, size, draft):
    data = _jpeg(_photo(*size), quality=90, subsampling=subsampling, progressive=progressive)
    with Image.open(io.BytesIO(data)) as img:
        if draft is not None:
            img.draft("RGB", draft)
        fast = turbo_jpeg.decode_rgb(data, img)
    assert fast is not None, "a plain YCbCr JPEG takes the fast path"
    expected = _pillow(data, draft)
    assert fast.shape == expected.shape
    assert np.array_equal(fast, expected)
    assert np.array_equal(imaging.decode_image(data, draft_size=draft), expected)


@needs_turbo
@pytest.mark.parametrize("orientation", range(1, 9))
def test_turbo_path_turns_exif_orientations_like_pillow(orientation):
    data = _jpeg(_photo(240, 120), orientation=orientation, quality=85)
    for draft in (None, (60, 120)):
        got = imaging.decode_image(data, draft_size=draft)
        assert np.array_equal(got, _pillow(data, draft)), (orientation, draft)


@needs_turbo
def test_turbo_steps_aside_for_what_it_does_not_promise(monkeypatch):
    gray = _jpeg(_photo(64, 32)[:, :, 0])
    cmyk = io.BytesIO()
    Image.fromarray(_photo(64, 32)).convert("CMYK").save(cmyk, format="JPEG")
    png = io.BytesIO()
    Image.fromarray(_photo(64, 32)).save(png, format="PNG")
    for data in (gray, cmyk.getvalue(), png.getvalue()):
        with Image.open(io.BytesIO(data)) as img:
            assert turbo_jpeg.decode_rgb(data, img) is None
    # ... and those still decode, through Pillow
    assert imaging.decode_image(gray).shape == (32, 64, 3)
    assert imaging.decode_image(cmyk.getvalue()).shape == (32, 64, 3)


@needs_turbo
def test_a_truncated_jpeg_gets_pillows_error_not_turbojpegs():
    data = _jpeg(_photo(256, 128), quality=90)
    truncated = data[: len(data) // 2]
    with Image.open(io.BytesIO(truncated)) as img:
        assert turbo_jpeg.decode_rgb(truncated, img) is None  # libjpeg warned: Pillow decides
    with pytest.raises(ImageDecodeError, match="truncated"):
        imaging.decode_image(truncated)


def test_without_simplejpeg_pillow_decodes_the_same(monkeypatch):
    data = _jpeg(_photo(200, 100), quality=90)
    fast = imaging.decode_image(data, draft_size=(100, 50))
    monkeypatch.setattr(turbo_jpeg, "_simplejpeg", None)
    assert not turbo_jpeg.available()
    assert np.array_equal(imaging.decode_image(data, draft_size=(100, 50)), fast)


def test_an_operator_can_leave_every_jpeg_to_pillow():
    code = "from genadapt import turbo_jpeg; print(turbo_jpeg.available())"
    env = {**os.environ, "GENADAPT_JPEG_DECODER": "pillow"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
