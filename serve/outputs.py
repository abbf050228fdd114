"""Response bodies for a label map: png (train ids), color, overlay, npy and json."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np

from genadapt.encoding import encode_jpeg, encode_png
from genadapt.imaging import colorize, nearest_labels, overlay, resize_rgb, upload_views
from genadapt.labels import LabelSpace
from genadapt.spec import ModelSpec

FORMATS = {
    "png": "image/png",
    "color": "image/png",
    "overlay": "image/jpeg",
    "npy": "application/x-npy",
    "json": "application/json",
}


@dataclass(frozen=True)
class Decoded:
    """An upload, decoded: the network's input, the photo (when the response shows it) and the
    upload's own (W, H)."""

    network_input: np.ndarray  # uint8 (H, W, 3) at the network size
    photo: np.ndarray | None
    upload_size: tuple[int, int]

    def output_size(self, spec: ModelSpec, size: str, max_pixels: int) -> tuple[int, int]:
        """(W, H) of the response: the spec's output size ('native'), or the upload's ('input')
        scaled down, keeping its aspect ratio, to at most `max_pixels`."""
        if size == "native":
            return spec.output_size
        width, height = self.upload_size
        if width * height <= max_pixels:
            return width, height
        scale = math.sqrt(max_pixels / (width * height))
        return max(1, int(width * scale)), max(1, int(height * scale))


# Peak bytes per output pixel of the heaviest response (an overlay: labels, colours, the photo
# resized, the blend and its JPEG), for the memory budget.
OUTPUT_BYTES_PER_PIXEL = 16


def draft_sizes(spec: ModelSpec, photo_needed: bool) -> list[tuple[int, int]]:
    """The sizes an upload is decoded at: the network's, and the output's for a photo."""
    return [spec.input_size, spec.output_size] if photo_needed else [spec.input_size]


def decode_upload(data: bytes, spec: ModelSpec, max_pixels: int, photo_needed: bool) -> Decoded:
    """Build the network input exactly as genadapt-predict does (JPEG decoded at reduced scale,
    then resized), so that the service and the CLI return the same labels; the upload's size
    comes from the same header parse."""
    photo_size = spec.output_size if photo_needed else None
    net, photo, shown = upload_views(data, spec.input_size, photo_size, max_pixels)
    return Decoded(net, photo, shown)


@dataclass(frozen=True)
class EncodeRequest:
    """Everything the response body is made of."""

    format: str  # one of FORMATS
    labels: np.ndarray  # uint8 (H, W) at the spec's output size
    photo: np.ndarray | None  # RGB, for overlays
    size: tuple[int, int]  # (W, H) of the response
    label_space: LabelSpace
    png_level: int
    with_overlay: bool = False  # json only
    with_photo: bool = False  # json only


def run_lengths(mask: np.ndarray) -> list[int]:
    """COCO-style uncompressed RLE of a boolean mask in row-major order: alternating run
    lengths, starting with a run of False (possibly 0)."""
    flat = mask.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.r_[0, changes, flat.size]
    runs = np.diff(bounds).tolist()
    return runs if not flat[0] else [0, *runs]


def summary(labels: np.ndarray, space: LabelSpace, with_rle: bool = True) -> dict:
    counts = np.bincount(labels.ravel(), minlength=space.num_classes)[: space.num_classes]
    total = int(labels.size)
    classes = []
    for class_id in np.flatnonzero(counts):
        entry = {
            "id": int(class_id),
            "name": space.names[class_id],
            "color": list(space.palette[class_id]),
            "pixels": int(counts[class_id]),
            "fraction": round(float(counts[class_id]) / total, 6),
        }
        if with_rle:
            entry["rle"] = run_lengths(labels == class_id)
        classes.append(entry)
    return {"height": labels.shape[0], "width": labels.shape[1], "classes": classes}


def encode(request: EncodeRequest) -> bytes | dict:
    """The response body (bytes, or a dict for json), resized with the one nearest-label rule
    every runtime uses."""
    labels = nearest_labels(request.labels[None], request.size)[0]
    palette = request.label_space.palette_array()
    fmt, png_level = request.format, request.png_level
    if fmt == "png":
        return encode_png(labels, png_level)
    if fmt == "color":
        return encode_png(colorize(labels, palette), png_level)
    if fmt == "overlay":
        return encode_jpeg(overlay(request.photo, labels, palette))
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, labels, allow_pickle=False)
        return buf.getvalue()
    body = summary(labels, request.label_space)
    if request.with_overlay:
        jpeg = encode_jpeg(overlay(request.photo, labels, palette), quality=85)
        body["overlay_jpeg_base64"] = base64.b64encode(jpeg).decode()
    if request.with_photo:
        photo = resize_rgb(request.photo, (labels.shape[1], labels.shape[0]))
        body["photo_jpeg_base64"] = base64.b64encode(encode_jpeg(photo, quality=85)).decode()
    return body
