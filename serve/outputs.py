"""Response bodies for a label map: png (train ids), color, overlay, npy and json."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from genadapt.imaging import colorize, encode_jpeg, encode_png, overlay
from genadapt.labels import LabelSpace

FORMATS = {
    "png": "image/png",
    "color": "image/png",
    "overlay": "image/jpeg",
    "npy": "application/x-npy",
    "json": "application/json",
}


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest resize of a label map to (W, H): class ids are never blended."""
    if (labels.shape[1], labels.shape[0]) == size:
        return labels
    return np.asarray(Image.fromarray(labels).resize(size, Image.Resampling.NEAREST))


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


def encode(
    fmt: str,
    labels: np.ndarray,
    rgb: np.ndarray | None,
    space: LabelSpace,
    png_level: int,
    with_overlay: bool = False,
) -> bytes | dict:
    """The response body (bytes, or a dict for json) in `fmt`; `rgb` is needed for overlays."""
    palette = space.palette_array()
    if fmt == "png":
        return encode_png(labels, png_level)
    if fmt == "color":
        return encode_png(colorize(labels, palette), png_level)
    if fmt == "overlay":
        return encode_jpeg(overlay(rgb, labels, palette))
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, labels, allow_pickle=False)
        return buf.getvalue()
    body = summary(labels, space)
    if with_overlay:
        jpeg = encode_jpeg(overlay(rgb, labels, palette), quality=85)
        body["overlay_jpeg_base64"] = base64.b64encode(jpeg).decode()
    return body
