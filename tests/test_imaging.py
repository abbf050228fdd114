import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from genadapt.encoding import encode_png
from genadapt.imaging import (
    ImageDecodeError,
    ImageTooLargeError,
    Normalization,
    UnsupportedImageError,
    colorize,
    decode_image,
    logits_to_labels,
    overlay,
    to_input_tensor,
)
from genadapt.labels import CITYSCAPES19


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def gradient(w: int = 40, h: int = 30) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    return np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8)


RGB = gradient()


def samples() -> dict[str, tuple[bytes, np.ndarray | None]]:
    """name → (encoded file, expected RGB or None where lossy)."""
    rgb = Image.fromarray(RGB)
    gray = rgb.convert("L")
    gray_rgb = np.repeat(np.asarray(gray)[:, :, None], 3, axis=2)
    palette = rgb.quantize(colors=16)
    rgba = np.concatenate([RGB, np.full((*RGB.shape[:2], 1), 255, np.uint8)], axis=2)
    binary = gray.point(lambda v: 255 * (v > 127))
    gray16 = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)
    return {
        "png_rgb": (encode(rgb, "PNG"), RGB),
        "png_gray": (encode(gray, "PNG"), gray_rgb),
        "png_palette": (encode(palette, "PNG"), np.asarray(palette.convert("RGB"))),
        "png_rgba": (encode(Image.fromarray(rgba), "PNG"), RGB),
        "png_la": (encode(gray.convert("LA"), "PNG"), gray_rgb),
        "png_16bit": (encode(gray16, "PNG"), gray_rgb),
        "png_1bit": (
            encode(binary.convert("1"), "PNG"),
            np.repeat(np.asarray(binary)[..., None], 3, 2),
        ),
        "bmp": (encode(rgb, "BMP"), RGB),
        "tiff": (encode(rgb, "TIFF"), RGB),
        "tiff_16bit": (encode(gray16, "TIFF"), gray_rgb),
        "tiff_float": (
            encode(Image.fromarray(np.asarray(gray, np.float32) / 255), "TIFF"),
            gray_rgb,
        ),
        "webp_lossless": (encode(rgb, "WEBP", lossless=True), RGB),
        "webp": (encode(rgb, "WEBP", quality=90), None),
        "jpeg": (encode(rgb, "JPEG", quality=95), None),
        "jpeg_gray": (encode(gray, "JPEG", quality=95), None),
        "jpeg_cmyk": (encode(rgb.convert("CMYK"), "JPEG", quality=95), None),
        "gif": (encode(palette, "GIF"), np.asarray(palette.convert("RGB"))),
    }


@pytest.mark.parametrize("name", list(samples()))
def test_decode_every_mode_to_rgb(name):
    data, expected = samples()[name]
    out = decode_image(data)
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)
    if expected is not None:
        np.testing.assert_allclose(out.astype(int), expected.astype(int), atol=1)
    else:  # lossy: close to the source on average
        reference = expected if expected is not None else RGB
        if name == "jpeg_gray":
            reference = np.repeat(RGB.mean(axis=2, keepdims=True), 3, axis=2)
        assert np.abs(out.astype(float) - reference).mean() < 40


def test_exif_rotation_is_applied():
    img = Image.fromarray(RGB)  # 40 wide, 30 high
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90° clockwise turn
    out = decode_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape == (40, 30, 3)
    # After the turn, the left column of the stored image is the top row.
    assert np.abs(out[0, :, 1].astype(int) - RGB[::-1, 0, 1]).mean() < 10


def test_transparent_pixels_become_black():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200  # a hidden colour under alpha 0
    out = decode_image(encode(Image.fromarray(rgba), "PNG"))
    assert out.max() == 0


def test_truncated_and_bad_files_raise_clear_errors():
    data = encode(Image.fromarray(gradient(400, 300)), "JPEG", quality=95)
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="zero bytes"):
        decode_image(b"")
    with pytest.raises(UnsupportedImageError, match="not a supported image"):
        decode_image(b"hello, this is text")
    with pytest.raises(UnsupportedImageError):
        decode_image(encode(Image.fromarray(RGB), "PDF"))


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels: a decompression bomb's calling card."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding():
    with pytest.raises(ImageTooLargeError, match="more than the allowed"):
        decode_image(_png_claiming(15_000, 10_000))  # 150 MP, under Pillow's own hard limit
    with pytest.raises(ImageTooLargeError):
        decode_image(_png_claiming(60_000, 60_000))  # Pillow's DecompressionBombError
    with pytest.raises(ImageTooLargeError):
        decode_image(encode(Image.fromarray(RGB), "PNG"), max_pixels=100)


def test_jpeg_draft_decodes_at_reduced_scale_not_below_request():
    data = encode(Image.fromarray(gradient(800, 400)), "JPEG")
    out = decode_image(data, draft_size=(200, 100))
    assert out.shape == (100, 200, 3)
    assert decode_image(data, draft_size=(300, 150)).shape == (200, 400, 3)


def test_input_tensor_is_resized_and_normalized():
    img = np.full((30, 50, 3), 255, np.uint8)
    x = to_input_tensor([img, img], (64, 32))
    assert x.shape == (2, 3, 32, 64) and x.dtype == torch.float32
    norm = Normalization()
    expected = [(1 - m) / s for m, s in zip(norm.mean, norm.std, strict=True)]
    torch.testing.assert_close(x[0, :, 5, 5], torch.tensor(expected))


def test_labels_upsampled_to_output_size():
    logits = torch.zeros(1, 3, 4, 8)
    logits[0, 2, :, :4] = 1.0  # class 2 on the left half, class 0 elsewhere
    for mode in ("bilinear", "nearest"):
        labels = logits_to_labels(logits, (16, 8), mode)
        assert labels.shape == (1, 8, 16) and labels.dtype == torch.uint8
        assert (labels[0, :, :7] == 2).all() and (labels[0, :, 9:] == 0).all()
    nearest = logits_to_labels(logits, (16, 8), "nearest")[0]
    torch.testing.assert_close(
        nearest, logits.argmax(1)[0].to(torch.uint8).repeat_interleave(2, 0).repeat_interleave(2, 1)
    )
    with pytest.raises(ValueError):
        logits_to_labels(logits, (16, 8), "cubic")


def test_colorize_overlay_and_png():
    palette = CITYSCAPES19.palette_array()
    labels = np.array([[0, 13], [255, 10]], np.uint8)
    color = colorize(labels, palette)
    assert tuple(color[0, 1]) == (0, 0, 142) and tuple(color[1, 0]) == (0, 0, 0)
    blended = overlay(np.full((1, 1, 3), 100, np.uint8), labels, palette, alpha=0.5)
    assert blended.shape == (2, 2, 3) and tuple(blended[0, 0]) == (114, 82, 114)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(labels))))
    np.testing.assert_array_equal(decoded, labels)


@pytest.mark.parametrize("deflate", ["isal", "zlib"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (1024, 2048), (1024, 2048, 3), (777, 333, 3)])
def test_encode_png_round_trips_through_pillow(shape, deflate, monkeypatch):
    """Our own PNG writer (ISA-L's deflate, or zlib's in one stripe or several deflated in
    threads and joined) must decode, CRCs and zlib check value included, to exactly the array
    it was given."""
    import genadapt.encoding as encoding
    from genadapt.encoding import PNG_STRIPE_BYTES

    if deflate == "isal":
        assert encoding._isal_zlib is not None, "isal is a dependency: the fast path must be there"
    else:
        monkeypatch.setattr(encoding, "_isal_zlib", None)

    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 19, (shape[0] // 16 + 1, shape[1] // 16 + 1), dtype=np.uint8)
    labels = np.kron(blocks, np.ones((16, 16), np.uint8))[: shape[0], : shape[1]]
    speckle = rng.random(labels.shape) < 0.02
    labels[speckle] = rng.integers(0, 255, int(speckle.sum()), dtype=np.uint8)
    array = labels if len(shape) == 2 else CITYSCAPES19.palette_array()[labels % 19]
    assert array.shape == shape
    if deflate == "zlib" and array.nbytes > 2 * PNG_STRIPE_BYTES:
        assert len(_idat_sync_points(encode_png(array))) >= 2  # really written in stripes
    image = Image.open(io.BytesIO(encode_png(array)))
    image.load()
    assert image.mode == ("L" if len(shape) == 2 else "RGB")
    np.testing.assert_array_equal(np.asarray(image), array)


def _idat_sync_points(png: bytes) -> list[int]:
    """Offsets of the empty stored blocks that zlib's sync flush leaves between stripes."""
    start = png.index(b"IDAT") + 4
    body = png[start : start + int.from_bytes(png[start - 8 : start - 4], "big")]
    return [i for i in range(len(body) - 4) if body[i : i + 4] == b"\x00\x00\xff\xff"]


def test_encode_png_refuses_what_it_cannot_write():
    for bad in (np.zeros((2, 2), np.uint16), np.zeros((2, 2, 4), np.uint8), np.zeros(4, np.uint8)):
        with pytest.raises(ValueError, match="uint8"):
            encode_png(bad)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_network_input_is_the_same_with_or_without_a_photo(fmt):
    from genadapt.imaging import network_input, network_input_and_photo

    data = encode(Image.fromarray(gradient(800, 400)), fmt)
    net, photo = network_input_and_photo(data, (100, 50), (400, 200))
    np.testing.assert_array_equal(net, network_input(data, (100, 50)))
    assert net.shape == (50, 100, 3) and photo.shape[0] >= 200 and photo.shape[1] >= 400


def test_one_nearest_label_rule_at_pixel_centres():
    """Every label resize (the ×2 of every backend and the service's size=input) samples at
    pixel centres, PyTorch's `nearest-exact`; at the ×2 it is also plain `nearest`."""
    import torch.nn.functional as F  # noqa: N812

    from genadapt.imaging import nearest_labels

    rng = np.random.default_rng(0)
    for (h, w), (big_h, big_w) in [
        ((100, 150), (700, 1000)),
        ((64, 128), (100, 150)),
        ((1024, 2048), (768, 1024)),
        ((100, 150), (37, 53)),
    ]:
        labels = rng.integers(0, 19, (1, h, w), dtype=np.uint8)
        ours = nearest_labels(labels, (big_w, big_h))
        exact = (
            F.interpolate(
                torch.from_numpy(labels)[None].float(), (big_h, big_w), mode="nearest-exact"
            )[0]
            .to(torch.uint8)
            .numpy()
        )
        assert (ours == exact).all()
    labels = rng.integers(0, 19, (1, 32, 64), dtype=np.uint8)
    twice = F.interpolate(torch.from_numpy(labels)[None].float(), (64, 128), mode="nearest")
    assert (nearest_labels(labels, (128, 64)) == twice[0].to(torch.uint8).numpy()).all()
    # The device-side rule (logits_to_labels "nearest") is the host's at every scale too.
    logits = torch.randn(2, 19, 37, 53)
    host_labels = logits.argmax(1).to(torch.uint8).numpy()
    for size in [(106, 74), (100, 70), (211, 149), (40, 30)]:
        device = logits_to_labels(logits, size, "nearest").numpy()
        np.testing.assert_array_equal(device, nearest_labels(host_labels, size))


def test_a_decompression_bomb_is_refused_against_genadapts_own_limit():
    import struct
    import zlib

    from genadapt.imaging import ImageTooLargeError

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 20000, 10000, 8, 2, 0, 0, 0)  # 200 MP: Pillow refuses it
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(png, max_pixels=30_000_000)
    assert str(caught.value) == "image has 200.0 megapixels, more than the allowed 30.0 megapixels"


def test_a_jpeg_scan_bomb_is_refused_before_decoding():
    import time

    from genadapt.imaging import MAX_JPEG_SCANS

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(
        buf, format="JPEG", progressive=True
    )
    data = buf.getvalue()
    assert decode_image(data).shape == (64, 64, 3)  # an encoder's ~10 scans are fine
    last_scan, end = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    bomb = data[:end] + data[last_scan:end] * 2000 + data[end:]  # 2,000 more refinement scans
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=f"more than the {MAX_JPEG_SCANS}"):
        decode_image(bomb)
    assert time.perf_counter() - started < 1.0  # counted, never decoded


@pytest.mark.parametrize("kind", ["jpeg-rotated", "png"])
def test_upload_views_is_what_the_separate_functions_give_from_one_parse(kind):
    from genadapt.imaging import network_input, network_input_and_photo, probe_size, upload_views

    rng = np.random.default_rng(2)
    img = Image.fromarray(rng.integers(0, 256, (90, 200, 3), dtype=np.uint8))
    if kind == "png":
        data = encode(img, "PNG")
    else:
        exif = Image.Exif()
        exif[0x0112] = 6
        data = encode(img, "JPEG", exif=exif.tobytes(), quality=95)
    net, photo, shown = upload_views(data, (64, 32), (128, 64))
    want_net, want_photo = network_input_and_photo(data, (64, 32), (128, 64))
    np.testing.assert_array_equal(net, want_net)
    np.testing.assert_array_equal(photo, want_photo)
    assert shown == probe_size(data) == ((90, 200) if kind != "png" else (200, 90))
    alone, none, _ = upload_views(data, (64, 32), None)
    np.testing.assert_array_equal(alone, network_input(data, (64, 32)))
    assert none is None
