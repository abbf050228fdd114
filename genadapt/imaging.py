"""Image I/O and the pre/post-processing around the network.

decode_image: any JPEG/PNG/WebP/BMP/TIFF/GIF a user may send → RGB uint8 (H, W, 3), upright.
to_input_tensor: RGB uint8 images → normalized float NCHW at the network size.
logits_to_labels: logits → uint8 train ids at the output size (2× the network size by default).
colorize / overlay / encode_png: what a person looks at.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from PIL import Image, UnidentifiedImageError

from genadapt import turbo_jpeg
from genadapt.errors import GenadaptError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
DEFAULT_MAX_PIXELS = 40_000_000  # 8K UHD is 33 MP; a camera frame never needs more
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")  # JPEG covers MPO
Upsample = Literal["bilinear", "nearest"]
UPSAMPLE_MODES: tuple[str, ...] = ("bilinear", "nearest")


class ImageDecodeError(GenadaptError):
    """The bytes are not an image genadapt can read (empty, corrupt, truncated, unsupported)."""


class UnsupportedImageError(ImageDecodeError):
    """A file of a format or pixel mode that genadapt does not decode."""


class ImageTooLargeError(ImageDecodeError):
    """More pixels than allowed: refused before decoding (decompression-bomb guard)."""


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean/std applied to RGB in [0, 1] (ImageNet's, which VGG16 was trained with)."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> Normalization:
        mean, std = data["mean"], data["std"]
        return cls(mean=(mean[0], mean[1], mean[2]), std=(std[0], std[1], std[2]))


IMAGENET = Normalization()


# What Pillow raises on bytes it cannot make sense of, found by mutation fuzzing of valid
# images (tests/test_decode_fuzz.py): every one means "undecodable", never a server error.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ArithmeticError,  # ZeroDivisionError; OverflowError from a TIFF's 64-bit strip offset
)
# The memory a decode may hold at its peak, per decoded pixel and in all (see decode_cost).
# A progressive JPEG's decode time grows with its scans, and a file can hold hundreds of
# thousands of tiny ones (a "scan bomb" held a decode thread for a minute). Encoders write about
# 10; past this many the file is refused before decoding. Each scan starts with an SOS marker,
# FF DA, which entropy-coded data never contains (an FF there is followed by 00 or RSTn).
MAX_JPEG_SCANS = 256
DECODE_BYTES_PER_PIXEL = 20
DECODE_OVERHEAD_BYTES = 48 << 20
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "I", "F")


@contextmanager
def reading_image(max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[None]:
    """Around Pillow reading untrusted bytes: what it raises on them becomes an
    ImageDecodeError (or its too-large / unsupported kinds), and its warnings about metadata
    it skips are muted (the result, or the error, says all a caller needs). An image Pillow
    refuses as a decompression bomb is reported against genadapt's own `max_pixels`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{megapixels(int(found.group(1)))}" if found else "too many pixels"
        raise ImageTooLargeError(
            f"image has {size}, more than the allowed {megapixels(max_pixels)}"
        ) from None
    except UnidentifiedImageError:
        raise UnsupportedImageError(
            f"not a supported image (supported: {', '.join(SUPPORTED_FORMATS)})"
        ) from None
    except DECODE_ERRORS as exc:
        raise ImageDecodeError(f"corrupt, truncated or unreadable image: {exc}") from None


def decode_image(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode `data` into an upright RGB uint8 array (H, W, 3).

    Handles grayscale, palette, alpha, 16-bit, CMYK and EXIF orientation. The pixel count is
    checked from the header before any pixel is decoded. `draft_size` = (W, H) lets the image
    come back reduced, but never below that size: JPEG decodes straight to a smaller scale, and
    other formats are box-reduced by an integer factor right after decoding, before any
    conversion, which keeps both time and memory down for a network input or a photo that is
    smaller than the upload. Anything Pillow cannot read raises an ImageDecodeError.
    """
    return decode_images(data, [draft_size], max_pixels)[0]


def decode_images(
    data: bytes,
    draft_sizes: list[tuple[int, int] | None],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    shown: list[tuple[int, int]] | None = None,
) -> list[np.ndarray]:
    """`decode_image` at several draft sizes: each result is what `decode_image` returns for
    its size. A JPEG is decoded once per size (its draft mode decodes reduced); any other
    format is decoded once and reduced from that one frame. `shown` receives the image's
    (W, H) as displayed (EXIF rotation applied), from the same header parse."""
    if not data:
        raise ImageDecodeError("empty file: zero bytes")
    if data[:2] == b"\xff\xd8" and (scans := data.count(b"\xff\xda")) > MAX_JPEG_SCANS:
        raise ImageDecodeError(
            f"a JPEG with {scans} scans, more than the {MAX_JPEG_SCANS} any encoder writes: "
            "refused before decoding, since its decode time grows with every scan"
        )
    with reading_image(max_pixels):
        if data[:2] == b"\xff\xd8" and len(draft_sizes) > 1:
            first = _decode(data, max_pixels, draft_sizes[:1], shown)
            return first + [_decode(data, max_pixels, [size])[0] for size in draft_sizes[1:]]
        return _decode(data, max_pixels, draft_sizes, shown)


def _decode(
    data: bytes,
    max_pixels: int,
    draft_sizes: list[tuple[int, int] | None],
    shown: list[tuple[int, int]] | None = None,
) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as img:
        width, height = img.size
        if width < 1 or height < 1:
            raise ImageDecodeError(f"image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"image has {width}x{height} = {megapixels(width * height)}, more than the "
                f"allowed {megapixels(max_pixels)}"
            )
        (first, *_) = draft_sizes
        if first is not None and img.format in ("JPEG", "MPO"):
            img.draft("RGB", _draft_request(img, first))
        orientation = img.getexif().get(0x0112, 1)
        upright = _ORIENTATIONS.get(orientation)  # None: nothing to turn (no copy either)
        if shown is not None:
            shown.append((height, width) if orientation in (5, 6, 7, 8) else (width, height))
        if len(draft_sizes) == 1 and (rgb := turbo_jpeg.decode_rgb(data, img)) is not None:
            # The same pixels as Pillow's, without its copies (genadapt/turbo_jpeg.py).
            return [rgb if upright is None else np.asarray(Image.fromarray(rgb).transpose(upright))]
        img.load()
        frames = []
        for size in draft_sizes:
            frame = img if size is None else _reduce(img, _draft_request(img, size))
            if upright is not None:
                frame = frame.transpose(upright)
            frames.append(_to_rgb(frame))
        return frames


# EXIF orientation → the transpose that makes the image upright: ImageOps.exif_transpose's
# table, applied here to the decoded frame whichever decoder made it.
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def _reduce(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Box-reduce by the largest integer factor that keeps the image at least `size`."""
    factor = min(img.width // max(size[0], 1), img.height // max(size[1], 1))
    if factor < 2:
        return img
    if img.mode.startswith("I;16"):  # Pillow cannot reduce it: take the high byte first
        img = Image.fromarray((np.asarray(img) >> 8).astype(np.uint8), "L")
    elif img.mode not in _REDUCIBLE:  # palette, CMYK, …: to what it will become anyway
        alpha = img.mode in ("PA", "La") or "transparency" in img.info
        img = img.convert("RGBA" if alpha else "RGB")
    return img.reduce(factor)


def decode_cost(data: bytes, draft_sizes: list[tuple[int, int] | None]) -> int:
    """Bytes that decoding `data` at `draft_sizes` may hold at its peak, from the header alone:
    DECODE_BYTES_PER_PIXEL for every pixel decoded (a JPEG at its draft scale, once per size;
    any other format once, at full size), a progressive JPEG's coefficient buffer, plus a fixed
    overhead. The constants bound the peaks measured over the formats and modes genadapt reads
    (tests/test_decode_memory.py measures them in a fresh process)."""
    with reading_image():
        costs = [_decode_bytes(data, size) for size in draft_sizes]
    jpeg = data[:2] == b"\xff\xd8"
    decoded = sum(costs) if jpeg else max(costs)  # other formats decode once for all sizes
    return decoded + DECODE_OVERHEAD_BYTES


def _decode_bytes(data: bytes, draft_size: tuple[int, int] | None) -> int:
    with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as img:
        full_pixels = img.width * img.height
        jpeg = img.format in ("JPEG", "MPO")
        if draft_size is not None and jpeg:
            img.draft("RGB", _draft_request(img, draft_size))
        cost = img.width * img.height * DECODE_BYTES_PER_PIXEL
        if jpeg and img.info.get("progressive"):
            # libjpeg keeps every DCT coefficient of a progressive JPEG, at full resolution
            # whatever the draft scale, until its last scan: 2 bytes per pixel and component
            # (a 6000² CMYK one peaked at 278 MB where 59 MB were charged).
            cost += full_pixels * getattr(img, "layers", 3) * 2
        return cost


def _draft_request(img: Image.Image, size: tuple[int, int]) -> tuple[int, int]:
    # EXIF rotations by 90° swap width and height after decoding; ask for the swapped size.
    orientation = img.getexif().get(0x0112, 1)
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        gray = np.asarray(img)  # uint16 or int32: no wider temporary than the frame itself
        # 16-bit data keeps its high byte; 32-bit "I" holding 8-bit values is kept as is.
        if mode != "I" or gray.max(initial=0) > 255:
            gray = np.clip(gray, 0, 65535) >> 8
        return np.repeat(gray.astype(np.uint8)[:, :, None], 3, axis=2)
    if mode == "F":
        gray = np.asarray(img, dtype=np.float32)
        scale = 255.0 if gray.max(initial=0.0) <= 1.0 else 1.0
        gray = np.clip(np.nan_to_num(gray) * scale, 0, 255).round().astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("P", "PA", "LA", "RGBA") or "transparency" in img.info:
        # Composite alpha over black so that transparent pixels don't show hidden colours:
        # premultiplied RGBa is exactly that, and costs one frame instead of three.
        rgba = img if mode == "RGBA" else img.convert("RGBA")
        return np.ascontiguousarray(np.asarray(rgba.convert("RGBa"))[:, :, :3])
    try:
        # An RGB frame is read as it is: convert("RGB") would copy it first for nothing.
        return np.asarray(img if mode == "RGB" else img.convert("RGB"))
    except (ValueError, OSError) as exc:
        raise UnsupportedImageError(f"unsupported pixel mode {mode!r}: {exc}") from None


def network_input(
    data: bytes, size: tuple[int, int], max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """The network's view of an encoded image: decoded (JPEG at reduced scale) and resized to
    `size` = (W, H). Every command builds its input this way, so they all agree label for label."""
    return resize_rgb(decode_image(data, max_pixels, draft_size=size), size)


def network_input_and_photo(
    data: bytes,
    size: tuple[int, int],
    photo_size: tuple[int, int],
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray]:
    """The network input (exactly as `network_input` makes it) and the photo to draw on, at
    least `photo_size`. A format other than JPEG is decoded once for both."""
    net, photo = decode_images(data, [size, photo_size], max_pixels)
    return resize_rgb(net, size), photo


def upload_views(
    data: bytes,
    size: tuple[int, int],
    photo_size: tuple[int, int] | None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int]]:
    """What the service takes from an upload: the network input (exactly as `network_input`
    makes it), the photo when `photo_size` is given (as `network_input_and_photo`), and the
    upload's displayed (W, H), read by the same header parse."""
    shown: list[tuple[int, int]] = []
    sizes = [size] if photo_size is None else [size, photo_size]
    frames = decode_images(data, sizes, max_pixels, shown)
    return resize_rgb(frames[0], size), (frames[1] if photo_size else None), shown[0]


def probe_size(data: bytes) -> tuple[int, int]:
    """(W, H) of an encoded image as displayed (EXIF rotation applied), read from its header."""
    with reading_image(), Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as img:
        width, height = img.size
        return (height, width) if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (width, height)


def read_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS, **kwargs) -> np.ndarray:
    with open(path, "rb") as f:
        return decode_image(f.read(), max_pixels=max_pixels, **kwargs)


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an RGB uint8 image to `size` = (W, H); a no-op at the right size."""
    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def normalize_batch(batch: np.ndarray, normalization: Normalization = IMAGENET) -> np.ndarray:
    """uint8 RGB (N, H, W, 3) → normalized float32 (N, 3, H, W): what F expects."""
    mean = np.asarray(normalization.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(normalization.std, np.float32).reshape(1, 3, 1, 1)
    return (batch.transpose(0, 3, 1, 2).astype(np.float32) / 255 - mean) / std


def nearest_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Label maps (N, h, w) → (N, H, W) at `size` = (W, H), nearest, sampled at pixel centres
    (Pillow's and OpenCV's INTER_NEAREST_EXACT rule). At an integer upscale, such as the ×2 to
    the output size, it picks the same pixels as `logits_to_labels(..., "nearest")`."""
    if (labels.shape[2], labels.shape[1]) == tuple(size):
        return labels
    rows = _centre_indices(labels.shape[1], size[1])
    cols = _centre_indices(labels.shape[2], size[0])
    return labels[:, rows[:, None], cols[None, :]]


def _centre_indices(source: int, target: int) -> np.ndarray:
    index = ((np.arange(target) + 0.5) * (source / target)).astype(np.int64)
    return np.minimum(index, source - 1)


def to_input_tensor(
    images: list[np.ndarray] | np.ndarray,
    size: tuple[int, int],
    normalization: Normalization = IMAGENET,
) -> torch.Tensor:
    """RGB uint8 images of any size → normalized float32 (N, 3, H, W) at `size` = (W, H)."""
    batch = np.stack([resize_rgb(np.asarray(img), size) for img in images])  # (N, H, W, 3)
    return torch.from_numpy(normalize_batch(batch, normalization))


def logits_to_labels(
    logits: torch.Tensor,
    size: tuple[int, int],
    mode: Upsample = "bilinear",
) -> torch.Tensor:
    """Logits (N, K, h, w) → uint8 class ids (N, H, W) at `size` = (W, H).

    "bilinear" upsamples the logits, then takes the argmax (smoother boundaries); "nearest"
    takes the argmax at network size and repeats pixels (K times less work and memory), as a
    uint8 interpolation sampled at pixel centres: `nearest_labels`' rule at every scale, and on
    a GPU one kernel instead of an index gather.
    """
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsample mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    out_w, out_h = size
    if mode == "nearest":
        labels = logits.argmax(1).to(torch.uint8)[:, None]  # (N, 1, h, w)
        return F.interpolate(labels, size=(out_h, out_w), mode="nearest-exact")[:, 0]
    # One image at a time bounds memory: (K, 1024, 2048) float32 is 160 MB for 19 classes.
    return torch.cat(
        [
            F.interpolate(one[None], size=(out_h, out_w), mode="bilinear", align_corners=False)
            .argmax(1)
            .to(torch.uint8)
            for one in logits
        ]
    )


def colorize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """uint8 class ids (H, W) → RGB (H, W, 3) through a (256, 3) palette."""
    return palette[labels]


def overlay(
    rgb: np.ndarray, labels: np.ndarray, palette: np.ndarray, alpha: float = 0.5
) -> np.ndarray:
    """Blend the colour map over the photo (resized to the label map's size), in uint8: three
    bytes a pixel per image, where float32 blending needed about fifty."""
    photo = Image.fromarray(resize_rgb(rgb, (labels.shape[1], labels.shape[0])))
    color = Image.fromarray(colorize(labels, palette))
    return np.asarray(Image.blend(photo, color, alpha))
