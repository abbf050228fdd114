"""JPEG pixels straight from libjpeg-turbo's TurboJPEG API (the `simplejpeg` package).

Pillow decodes a JPEG through the same library, so the pixels are the same bytes (the default
"islow" DCT and fancy chroma upsampling in both; tests/test_turbo_jpeg.py compares them over
subsamplings, progressive files, odd sizes and every draft scale). What this path saves is
Pillow's machinery around the library, and its copies: a 2048×1024 JPEG decodes at half scale
1.26× faster (`genadapt-bench service`, docs/performance.md), straight into the NumPy array
that the network's input is made from; a full-size decode, which Pillow copies whole, gains
more.

`decode_rgb` answers None whenever it cannot promise Pillow's pixels (no simplejpeg, a colour
space other than 3-component YCbCr/RGB, a file libjpeg warns about, a scale it would choose
differently); the caller then decodes with Pillow as before, errors included.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

try:  # an optional speed-up: Pillow decodes the same pixels without it
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - simplejpeg is a dependency; a platform without its wheel
    _simplejpeg = None
# GENADAPT_JPEG_DECODER=pillow leaves every JPEG to Pillow: for comparing the two in one service,
# or for a platform whose simplejpeg wheel bundles a libjpeg-turbo that decodes differently.
if os.environ.get("GENADAPT_JPEG_DECODER", "").lower() == "pillow":
    _simplejpeg = None


def available() -> bool:
    return _simplejpeg is not None


def decode_rgb(data: bytes, img: Image.Image) -> np.ndarray | None:
    """The RGB pixels (H, W, 3) that `img.load()` would give for `img`, opened by Pillow from
    `data` and perhaps reduced by `img.draft`, or None where this path does not apply."""
    if _simplejpeg is None or img.format != "JPEG" or img.mode != "RGB":
        return None
    # Pillow's draft decodes at 1/scale (scale 1, 2, 4 or 8) to ceil(size / scale); ask
    # TurboJPEG for exactly that factor and check that it kept to it.
    scale = (getattr(img, "decoderconfig", None) or (1,))[0]
    width, height = img.size
    try:
        rgb = _simplejpeg.decode_jpeg(
            data, colorspace="RGB", min_width=width, min_height=height, min_factor=scale
        )
    except ValueError as exc:  # strict: libjpeg's warnings too; Pillow decides what they mean
        logger.debug("TurboJPEG declined (%s); decoding with Pillow", exc)
        return None
    if rgb.shape != (height, width, 3):
        logger.debug("TurboJPEG chose %s for %dx%d; decoding with Pillow", rgb.shape, width, height)
        return None
    return rgb
