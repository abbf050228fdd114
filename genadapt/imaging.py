"""Image I/O and the pre/post-processing around the network.

decode_image: any JPEG/PNG/WebP/BMP/TIFF/GIF a user may send → RGB uint8 (H, W, 3), upright.
to_input_tensor: RGB uint8 images → normalized float NCHW at the network size.
logits_to_labels: logits → uint8 train ids at the output size (2× the network size by default).
colorize / overlay / encode_png: what a person looks at.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from PIL import Image, ImageOps, UnidentifiedImageError

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


def decode_image(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode `data` into an upright RGB uint8 array (H, W, 3).

    Handles grayscale, palette, alpha, 16-bit, CMYK and EXIF orientation. The pixel count is
    checked from the header before any pixel is decoded. `draft_size` = (W, H) lets JPEG decode
    straight to a reduced scale no smaller than that size (several times faster for a network
    input that is smaller than the photo).
    """
    if not data:
        raise ImageDecodeError("empty file: zero bytes")
    try:
        with warnings.catch_warnings():
            # Our own max_pixels replaces Pillow's bomb warning; its hard limit still raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError:
        raise UnsupportedImageError(
            f"not a supported image (supported: {', '.join(SUPPORTED_FORMATS)})"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(str(exc)) from None
    with img:
        width, height = img.size
        if width < 1 or height < 1:
            raise ImageDecodeError(f"image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"image has {width}x{height} = {width * height} pixels, more than the "
                f"allowed {max_pixels}"
            )
        if draft_size is not None and img.format in ("JPEG", "MPO"):
            img.draft("RGB", _draft_request(img, draft_size))
        try:
            img.load()
            img = ImageOps.exif_transpose(img)
        except (OSError, SyntaxError, ValueError) as exc:
            # Pillow reports truncated or corrupt data as OSError ("image file is truncated").
            raise ImageDecodeError(f"corrupt or truncated {img.format} image: {exc}") from None
        return _to_rgb(img)


def _draft_request(img: Image.Image, size: tuple[int, int]) -> tuple[int, int]:
    # EXIF rotations by 90° swap width and height after decoding; ask for the swapped size.
    orientation = img.getexif().get(0x0112, 1)
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        gray = np.asarray(img).astype(np.int64)
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
        # Composite alpha over black so that transparent pixels don't show hidden colours.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    try:
        return np.asarray(img.convert("RGB"))
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
    least `photo_size`. Only JPEG decodes differently per requested size, so any other format
    is decoded once."""
    photo = decode_image(data, max_pixels, draft_size=photo_size)
    if data[:2] == b"\xff\xd8":  # JPEG: the network's input comes from its own reduced decode
        return network_input(data, size, max_pixels), photo
    return resize_rgb(photo, size), photo


def probe_size(data: bytes) -> tuple[int, int]:
    """(W, H) of an encoded image as displayed (EXIF rotation applied), read from its header."""
    with Image.open(io.BytesIO(data)) as img:
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
    takes the argmax at network size and repeats pixels (K times less work and memory).
    """
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsample mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    out_w, out_h = size
    if mode == "nearest":
        labels = logits.argmax(1).to(torch.uint8)  # (N, h, w)
        rows = torch.arange(out_h, device=labels.device) * labels.shape[1] // out_h
        cols = torch.arange(out_w, device=labels.device) * labels.shape[2] // out_w
        return labels[:, rows[:, None], cols[None, :]]
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
    """Blend the colour map over the photo (resized to the label map's size)."""
    photo = resize_rgb(rgb, (labels.shape[1], labels.shape[0])).astype(np.float32)
    color = colorize(labels, palette).astype(np.float32)
    return (photo * (1 - alpha) + color * alpha).round().astype(np.uint8)


def encode_png(array: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of a uint8 (H, W) or (H, W, 3) array.

    Level 1 encodes a 2048x1024 label map in ~8 ms vs ~11 ms at level 6 (DESIGN.md, 2 CPU cores).
    """
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
