"""Encoders for what genadapt answers with: label maps and colourings as PNG (its own writer,
fast on label maps), overlays as JPEG."""

from __future__ import annotations

import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

PNG_MAX_THREADS = 4  # stripes of one PNG deflated at once


def encode_png(array: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of a uint8 (H, W) or (H, W, 3) array.

    Written here rather than by Pillow, for speed: rows unfiltered, deflated by ISA-L (the
    `isal` package: Intel's SIMD deflate and adler32) at its fastest level, else by zlib with its
    run-length strategy in horizontal stripes deflated in parallel and joined into one stream
    (as pigz does). A 2048×1024 label map: ~21 ms with Pillow, ~7 ms with zlib in one thread,
    ~0.6 ms with ISA-L (docs/performance.md). Any PNG reader decodes either the same.
    """
    if (
        array.dtype != np.uint8
        or array.ndim not in (2, 3)
        or (array.ndim == 3 and array.shape[2] != 3)
    ):
        raise ValueError(
            f"encode_png takes uint8 (H, W) or (H, W, 3), got {array.dtype} {array.shape}"
        )
    height, width = array.shape[:2]
    rows = np.empty((height, 1 + width * (array.shape[2] if array.ndim == 3 else 1)), np.uint8)
    rows[:, 0] = 0  # filter type None on every row
    rows[:, 1:] = array.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if array.ndim == 2 else 2, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", _deflate_rows(rows, compress_level)),
            _png_chunk(b"IEND", b""),
        ]
    )


PNG_STRIPE_BYTES = 1 << 19  # below this a stripe's thread costs more than it saves
try:  # ISA-L's deflate: ~20× zlib's fastest on label maps; zlib where it is not installed
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - isal is a dependency; a platform without its wheel
    _isal_zlib = None
_png_pool: ThreadPoolExecutor | None = None


def _deflate_rows(rows: np.ndarray, level: int) -> bytes:
    """One zlib stream of `rows`: ISA-L where installed (level 1 and above map to its level 1,
    level 0 stays stored), else zlib in stripes."""
    if _isal_zlib is None:
        return _deflate_rows_zlib(rows, level)
    compressor = _isal_zlib.compressobj(min(level, 1), _isal_zlib.DEFLATED, 15)
    return compressor.compress(rows.data) + compressor.flush()


def _deflate_rows_zlib(rows: np.ndarray, level: int) -> bytes:
    """zlib: stripes are deflated apart (zlib lets go of the GIL) and end on a sync flush, so
    that their raw deflate data concatenates into one valid stream."""
    global _png_pool
    stripes = max(1, min(PNG_MAX_THREADS, rows.nbytes // PNG_STRIPE_BYTES))
    parts = np.array_split(rows, stripes)

    def deflate(index: int) -> bytes:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
        last = index == len(parts) - 1
        data = compressor.compress(parts[index].data)
        return data + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    if stripes == 1:
        body = [deflate(0)]
    else:
        _png_pool = _png_pool or ThreadPoolExecutor(PNG_MAX_THREADS, thread_name_prefix="png")
        body = list(_png_pool.map(deflate, range(stripes)))
    # zlib header: deflate with a 32 KiB window, no preset dictionary (a valid check value).
    adler = zlib.adler32(rows.data)
    return b"".join([b"\x78\x01", *body, struct.pack(">I", adler)])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
