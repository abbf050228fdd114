"""Rendering a layout in a domain's look.

- source: a flat synthetic look (saturated colours per class, little variation, crisp edges);
- target: a photographic look (other colours, textures, windows, lighting and colour cast,
  haze, blur, sensor noise and JPEG artefacts);
- unseen: a third look never used in training (dusk: dark, blue-tinted, foggy, noisy);
- tune: a fourth photographic look (bright noon, warm and contrasty) whose labels may be used to
  choose training settings, so that the target and unseen looks never are.
The same layout distribution underlies all of them, so only the appearance shifts.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from genadapt.scenes.layout import C

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Style:
    palette: dict[str, Colour]
    instance_jitter: float = 8.0  # std of a per-object colour offset
    jitter_classes: dict[str, float] = field(default_factory=dict)  # per-class override
    texture: dict[str, float] = field(default_factory=dict)  # amplitude of smooth noise
    grain: float = 0.0  # fine per-pixel texture amplitude (asphalt, foliage)
    windows: bool = False
    gain: tuple[float, float] = (1.0, 1.0)
    cast: float = 0.0  # per-channel colour cast spread
    haze: tuple[float, float] = (0.0, 0.0)
    haze_colour: Colour = (200, 200, 200)
    saturation: float = 1.0
    blur: tuple[float, float] = (0.0, 0.0)
    noise: tuple[float, float] = (0.0, 0.0)
    jpeg: tuple[int, int] | None = None


SOURCE = Style(
    palette={
        "road": (95, 95, 100), "sidewalk": (180, 160, 150), "building": (160, 110, 85),
        "wall": (190, 180, 140), "fence": (140, 100, 60), "pole": (90, 90, 90),
        "traffic light": (40, 40, 40), "traffic sign": (235, 205, 40),
        "vegetation": (50, 150, 50), "terrain": (130, 190, 80), "sky": (110, 170, 245),
        "person": (210, 70, 70), "rider": (70, 70, 210), "car": (210, 40, 40),
        "truck": (230, 230, 230), "bus": (240, 140, 20), "train": (120, 120, 120),
        "motorcycle": (60, 60, 60), "bicycle": (20, 20, 160),
    },
    instance_jitter=6.0,
)  # fmt: skip

TARGET = Style(
    palette={
        "road": (68, 70, 76), "sidewalk": (128, 124, 126), "building": (112, 106, 100),
        "wall": (150, 140, 118), "fence": (96, 92, 84), "pole": (118, 118, 118),
        "traffic light": (30, 32, 28), "traffic sign": (40, 80, 170),
        "vegetation": (78, 96, 42), "terrain": (150, 138, 86), "sky": (196, 204, 214),
        "person": (62, 54, 58), "rider": (86, 64, 60), "car": (90, 90, 100),
        "truck": (160, 160, 170), "bus": (196, 180, 70), "train": (100, 110, 120),
        "motorcycle": (50, 50, 50), "bicycle": (44, 44, 48),
    },
    instance_jitter=14.0,
    jitter_classes={"car": 55.0, "person": 30.0, "rider": 30.0, "building": 25.0},
    texture={"road": 0.12, "sidewalk": 0.15, "building": 0.2, "vegetation": 0.35,
             "terrain": 0.3, "sky": 0.06, "wall": 0.2},
    grain=0.10,
    windows=True,
    gain=(0.75, 1.2),
    cast=0.08,
    haze=(0.0, 0.25),
    haze_colour=(205, 210, 215),
    saturation=0.8,
    blur=(0.6, 1.4),
    noise=(3.0, 8.0),
    jpeg=(30, 60),
)  # fmt: skip

UNSEEN = Style(
    palette={
        "road": (40, 42, 60), "sidewalk": (80, 78, 96), "building": (70, 62, 84),
        "wall": (96, 90, 100), "fence": (60, 58, 70), "pole": (70, 72, 90),
        "traffic light": (230, 210, 120), "traffic sign": (200, 200, 210),
        "vegetation": (30, 56, 50), "terrain": (60, 70, 56), "sky": (60, 70, 120),
        "person": (110, 90, 80), "rider": (120, 100, 90), "car": (150, 150, 170),
        "truck": (100, 100, 120), "bus": (70, 110, 150), "train": (80, 80, 100),
        "motorcycle": (90, 90, 100), "bicycle": (150, 140, 130),
    },
    instance_jitter=12.0,
    jitter_classes={"car": 40.0},
    texture={"road": 0.2, "building": 0.25, "vegetation": 0.3, "terrain": 0.3, "sky": 0.15},
    grain=0.15,
    windows=True,
    gain=(0.8, 1.1),
    cast=0.05,
    haze=(0.2, 0.45),
    haze_colour=(90, 96, 130),
    saturation=0.7,
    blur=(1.0, 1.8),
    noise=(6.0, 12.0),
    jpeg=(25, 45),
)  # fmt: skip

TUNE = Style(
    palette={
        "road": (120, 112, 104), "sidewalk": (196, 184, 168), "building": (204, 176, 140),
        "wall": (176, 150, 120), "fence": (150, 120, 90), "pole": (70, 66, 60),
        "traffic light": (24, 40, 24), "traffic sign": (200, 40, 40),
        "vegetation": (96, 140, 40), "terrain": (180, 160, 90), "sky": (150, 190, 235),
        "person": (140, 90, 60), "rider": (60, 90, 140), "car": (170, 160, 150),
        "truck": (220, 210, 190), "bus": (40, 120, 170), "train": (140, 130, 120),
        "motorcycle": (40, 40, 40), "bicycle": (120, 40, 30),
    },
    instance_jitter=16.0,
    jitter_classes={"car": 60.0, "person": 35.0, "rider": 30.0, "building": 30.0},
    texture={"road": 0.18, "sidewalk": 0.2, "building": 0.25, "vegetation": 0.4,
             "terrain": 0.35, "sky": 0.04, "wall": 0.25},
    grain=0.12,
    windows=True,
    gain=(1.0, 1.3),
    cast=0.1,
    haze=(0.0, 0.15),
    haze_colour=(230, 225, 210),
    saturation=1.1,
    blur=(0.4, 1.0),
    noise=(2.0, 6.0),
    jpeg=(40, 75),
)  # fmt: skip

STYLES: dict[str, Style] = {"source": SOURCE, "target": TARGET, "unseen": UNSEEN, "tune": TUNE}


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """(H, W) noise in about [−1, 1], smooth over `cell` pixels (bilinear value noise)."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.Resampling.BILINEAR))


def _class_table(values: dict[str, float], default: float) -> np.ndarray:
    table = np.full(256, default, dtype=np.float32)
    for name, value in values.items():
        table[C[name]] = value
    return table


def render(
    labels: np.ndarray,
    instances: np.ndarray,
    horizon: float,
    style: Style,
    rng: np.random.Generator,
) -> np.ndarray:
    """RGB uint8 (H, W, 3) of the scene in `style`."""
    h, w = labels.shape
    palette = np.zeros((256, 3), dtype=np.float32)
    for name, colour in style.palette.items():
        palette[C[name]] = colour
    image = palette[labels]  # (H, W, 3)
    # Each object gets its own colour offset (cars of every colour in the photographic look).
    jitter = _class_table(style.jitter_classes, style.instance_jitter)
    first_label = np.zeros(instances.max() + 1, dtype=np.int64)
    first_label[instances.ravel()] = labels.ravel()
    offsets = rng.normal(0, 1, (len(first_label), 3)) * jitter[first_label][:, None]
    image += offsets[instances].astype(np.float32)
    if style.texture:
        amp = _class_table(style.texture, 0.0)[labels]
        texture = smooth_noise(rng, h, w, h / 12) + 0.5 * smooth_noise(rng, h, w, h / 40)
        image *= 1 + (amp * texture)[..., None]
    if style.grain:
        image *= 1 + style.grain * rng.uniform(-1, 1, (h, w, 1)).astype(np.float32)
    if style.windows:
        image = _windows(image, labels, rng)
    rows = np.arange(h, dtype=np.float32)[:, None, None]
    image = _light(image, rows, horizon, h, style, rng)
    grey = image.mean(axis=2, keepdims=True)
    image = grey + style.saturation * (image - grey)
    out = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    return _camera(out, style, rng)


def _windows(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A grid of dark windows on building pixels."""
    h, w = labels.shape
    px, py = rng.uniform(8, 16) * w / 512, rng.uniform(10, 18) * h / 256
    ys, xs = np.mgrid[0:h, 0:w]
    window = ((xs % px) < px * 0.55) & ((ys % py) < py * 0.5) & (labels == C["building"])
    image[window] *= rng.uniform(0.35, 0.6)
    return image


def _light(image, rows, horizon, h, style: Style, rng) -> np.ndarray:
    """Global gain and colour cast, then haze that thickens towards the horizon."""
    cast = 1 + rng.uniform(-style.cast, style.cast, 3).astype(np.float32)
    image = image * rng.uniform(*style.gain) * cast
    haze = rng.uniform(*style.haze)
    if haze > 0:
        closeness = np.exp(-np.abs(rows - horizon) / (0.25 * h))  # 1 at the horizon
        alpha = haze * closeness
        image = image * (1 - alpha) + np.asarray(style.haze_colour, np.float32) * alpha
    return image


def _camera(img: Image.Image, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Lens blur, sensor noise and compression, in the order a camera applies them."""
    radius = rng.uniform(*style.blur)
    if radius > 0:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    sigma = rng.uniform(*style.noise)
    image = np.asarray(img, dtype=np.float32)
    if sigma > 0:
        image = image + rng.normal(0, sigma, image.shape).astype(np.float32)
    rgb = np.clip(image, 0, 255).astype(np.uint8)
    if style.jpeg is not None:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=int(rng.integers(*style.jpeg)))
        rgb = np.asarray(Image.open(buf).convert("RGB"))
    return rgb
