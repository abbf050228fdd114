"""Street-scene layouts: a label map (Cityscapes train ids) and an instance map per scene.

A scene is a road in one-point perspective: sky above the horizon, buildings, walls and fences
along both sidewalks, trees, poles carrying traffic lights and signs, vehicles on the road,
people and bicycles on the sidewalks. Objects are painted far to near (painter's algorithm), so
nearer objects occlude farther ones. Sizes follow the perspective: an object whose base is at
image row y has scale (y − horizon) / (H − horizon).

Every primitive is a vectorized mask over its bounding box, so a 512×256 scene takes a few
milliseconds. `LayoutStats` holds what differs between domains' cameras and streets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genadapt.labels import CITYSCAPES_NAMES

C = {name: i for i, name in enumerate(CITYSCAPES_NAMES)}  # class name → train id


@dataclass(frozen=True)
class LayoutStats:
    """Camera and street statistics of a domain."""

    horizon: tuple[float, float] = (0.40, 0.50)  # horizon row as a fraction of H (camera height)
    road_width: tuple[float, float] = (0.55, 0.9)  # road width at the bottom, fraction of W
    cars: tuple[int, int] = (1, 5)
    big_vehicles: float = 0.5  # chance of a truck or a bus
    people: tuple[int, int] = (1, 5)
    riders: float = 0.5  # chance of a rider on a bicycle
    poles: tuple[int, int] = (2, 5)
    trees: tuple[int, int] = (1, 4)


class Canvas:
    """Label and instance maps with painting primitives restricted to bounding boxes."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.labels = np.full((height, width), C["sky"], dtype=np.uint8)
        self.instances = np.zeros((height, width), dtype=np.int32)
        self.next_id = 1

    def _paint(self, y0: int, x0: int, mask: np.ndarray, cls: int) -> None:
        h, w = mask.shape
        region = (slice(y0, y0 + h), slice(x0, x0 + w))
        self.labels[region][mask] = cls
        self.instances[region][mask] = self.next_id
        self.next_id += 1

    def _box(self, x0: float, y0: float, x1: float, y1: float):
        """Integer box clipped to the canvas and its pixel-centre grids, or None if empty."""
        ix0, iy0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        ix1, iy1 = min(self.w, int(np.ceil(x1)) + 1), min(self.h, int(np.ceil(y1)) + 1)
        if ix1 <= ix0 or iy1 <= iy0:
            return None
        ys, xs = np.mgrid[iy0:iy1, ix0:ix1].astype(np.float32) + 0.5
        return iy0, ix0, ys, xs

    def rect(self, x0: float, y0: float, x1: float, y1: float, cls: int) -> None:
        box = self._box(x0, y0, x1, y1)
        if box:
            iy0, ix0, ys, xs = box
            self._paint(iy0, ix0, (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1), cls)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, cls: int, ring: float = 0):
        box = self._box(cx - rx, cy - ry, cx + rx, cy + ry)
        if box and rx > 0 and ry > 0:
            iy0, ix0, ys, xs = box
            d = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2
            self._paint(iy0, ix0, (d <= 1) & (d >= ring), cls)

    def polygon(self, points: list[tuple[float, float]], cls: int) -> None:
        """A convex polygon, points in either winding order."""
        pts = np.asarray(points, dtype=np.float32)
        box = self._box(*pts.min(0), *pts.max(0))
        if not box:
            return
        iy0, ix0, ys, xs = box
        left = np.ones(ys.shape, dtype=bool)
        right = np.ones(ys.shape, dtype=bool)
        for (ax, ay), (bx, by) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
            cross = (bx - ax) * (ys - ay) - (by - ay) * (xs - ax)
            left &= cross >= 0
            right &= cross <= 0
        self._paint(iy0, ix0, left | right, cls)

    def columns(self, top: np.ndarray, bottom: np.ndarray, cls: int, where: np.ndarray) -> None:
        """Per column x (where `where`), fill rows top[x] ≤ y < bottom[x]: skylines and walls."""
        ys = np.arange(self.h, dtype=np.float32)[:, None] + 0.5
        mask = (ys >= top[None]) & (ys < bottom[None]) & where[None]
        self._paint(0, 0, mask, cls)


def generate_layout(rng: np.random.Generator, width: int, height: int, stats: LayoutStats):
    """One random scene: (labels (H, W) uint8 train ids, instances (H, W) int32, horizon row)."""
    cv = Canvas(width, height)
    yh = height * rng.uniform(*stats.horizon)
    vx = width * rng.uniform(0.35, 0.65)
    half_road = width * rng.uniform(*stats.road_width) / 2
    walk = width * rng.uniform(0.15, 0.35)
    road_l, road_r = vx - half_road - (vx - width / 2), vx + half_road - (vx - width / 2)
    # Ground: sidewalks (wide trapezoid) under the road (narrower trapezoid), both to the horizon.
    cv.polygon(
        [(vx - 1, yh), (road_l - walk, height), (road_r + walk, height), (vx + 1, yh)],
        C["sidewalk"],
    )
    cv.polygon([(vx - 0.5, yh), (road_l, height), (road_r, height), (vx + 0.5, yh)], C["road"])
    xs = np.arange(width, dtype=np.float32) + 0.5
    # Beyond each sidewalk: sometimes a strip of grass, then facades, walls and hedges.
    setback = [width * rng.uniform(0.1, 0.5) if rng.random() < 0.5 else 0.0 for _ in range(2)]
    outer = (road_l - walk - setback[0], road_r + walk + setback[1])
    for edge, far in ((road_l - walk, outer[0]), (road_r + walk, outer[1])):
        if edge != far:
            cv.polygon([(vx, yh), (edge, height), (far, height)], C["terrain"])
    base = _line(xs, vx, yh, outer[0], height), _line(xs, vx, yh, outer[1], height)
    _facades(cv, rng, xs, base, vx, yh)
    objects = _objects(rng, width, height, vx, yh, road_l, road_r, walk, stats)
    for _, draw in sorted(objects, key=lambda o: o[0]):  # far (small y) first
        draw(cv)
    return cv.labels, cv.instances, yh


def _line(xs: np.ndarray, vx: float, yh: float, x_bottom: float, h: float) -> np.ndarray:
    """Row of the line from the vanishing point (vx, yh) to (x_bottom, h), per column."""
    return yh + (xs - vx) * (h - yh) / (x_bottom - vx)


def _facades(cv: Canvas, rng, xs, base, vx, yh) -> None:
    """Buildings, walls, fences and hedges along each side, split into segments by depth."""
    for side, line in ((-1, base[0]), (1, base[1])):
        dist = np.abs(xs - vx) / cv.w  # 0 at the vanishing point, ~0.5 at the frame edge
        edges = np.sort(rng.uniform(0, 0.6, rng.integers(2, 6)))
        for lo, hi in zip(np.r_[0.01, edges], np.r_[edges, 0.7], strict=True):
            where = (dist >= lo) & (dist < hi) & ((xs < vx) if side < 0 else (xs > vx))
            kind = rng.choice(["building", "building", "building", "wall", "fence", "vegetation"])
            bottom = np.maximum(line, yh)
            if kind == "building":
                height = rng.uniform(1.2, 3.5) * cv.h * dist  # taller when nearer
                cv.columns(bottom - height, bottom, C["building"], where)
            else:
                height = rng.uniform(0.15, 0.5) * cv.h * dist
                cv.columns(bottom - height, bottom, C[kind], where)


def _objects(rng, width, height, vx, yh, road_l, road_r, walk, stats: LayoutStats):
    """(base row, painter) pairs for every object in the scene."""
    objs = []

    def ground(y_frac: float, lateral: float):  # lateral −1 … 1 across the road at that depth
        y = yh + (height - yh) * y_frac
        s = (y - yh) / (height - yh)
        centre = vx + (width / 2 - vx) * s
        x = centre + lateral * (road_r - road_l) / 2 * s
        return x, y, s

    for _ in range(rng.integers(*stats.cars, endpoint=True)):
        x, y, s = ground(rng.uniform(0.05, 1.0) ** 1.5, rng.uniform(-0.8, 0.8))
        kind = "car"
        if rng.random() < stats.big_vehicles / 2:
            kind = rng.choice(["truck", "bus"])
        objs.append((y, _vehicle(x, y, s * width, kind)))
    for _ in range(rng.integers(*stats.people, endpoint=True)):
        x, y, s = ground(
            rng.uniform(0.05, 1.0) ** 1.5, rng.choice([-1, 1]) * rng.uniform(1.05, 1.4)
        )
        objs.append((y, _person(x, y, s * height)))
    if rng.random() < stats.riders:
        x, y, s = ground(rng.uniform(0.1, 0.9), rng.choice([-1, 1]) * rng.uniform(0.8, 0.95))
        objs.append((y, _rider(x, y, s * height)))
    if rng.random() < 0.4:
        x, y, s = ground(rng.uniform(0.1, 0.9), rng.choice([-1, 1]) * rng.uniform(1.1, 1.5))
        objs.append((y, _bicycle(x, y, s * height)))
    for _ in range(rng.integers(*stats.poles, endpoint=True)):
        x, y, s = ground(rng.uniform(0.05, 1.0), rng.choice([-1, 1]) * rng.uniform(1.45, 1.8))
        objs.append((y, _pole(x, y, s * height, rng.choice(["light", "sign", "none"]))))
    for _ in range(rng.integers(*stats.trees, endpoint=True)):
        x, y, s = ground(rng.uniform(0.05, 0.9), rng.choice([-1, 1]) * rng.uniform(1.5, 2.2))
        objs.append((y, _tree(x, y, s * height)))
    return objs


def _vehicle(x, y, size, kind):
    w = size * {"car": 0.28, "truck": 0.36, "bus": 0.38}[kind]
    h = w * {"car": 0.75, "truck": 1.1, "bus": 1.05}[kind]

    def draw(cv: Canvas):
        cls = C[kind]
        if kind == "car":  # body, then a narrower cabin on top
            cv.rect(x - w / 2, y - h * 0.55, x + w / 2, y, cls)
            cv.polygon(
                [
                    (x - w * 0.32, y - h),
                    (x - w * 0.45, y - h * 0.5),
                    (x + w * 0.45, y - h * 0.5),
                    (x + w * 0.32, y - h),
                ],
                cls,
            )
        else:
            cv.rect(x - w / 2, y - h, x + w / 2, y, cls)
        for wx in (x - w * 0.33, x + w * 0.33):  # wheels stay the vehicle's class
            cv.ellipse(wx, y - h * 0.05, w * 0.1, h * 0.1, cls)

    return draw


def _person(x, y, size):
    h = size * 0.45

    def draw(cv: Canvas):
        cls = C["person"]
        cv.rect(x - h * 0.1, y - h * 0.5, x + h * 0.1, y, cls)  # legs
        cv.ellipse(x, y - h * 0.65, h * 0.14, h * 0.22, cls)  # torso
        cv.ellipse(x, y - h * 0.92, h * 0.08, h * 0.08, cls)  # head

    return draw


def _bicycle(x, y, size):
    r = size * 0.08

    def draw(cv: Canvas):
        cls = C["bicycle"]
        for wx in (x - r * 1.3, x + r * 1.3):
            cv.ellipse(wx, y - r, r, r, cls, ring=0.55)
        cv.polygon(
            [
                (x - r * 1.3, y - r),
                (x - r * 0.2, y - r * 2.2),
                (x + r * 1.3, y - r),
                (x + r * 0.2, y - r * 0.9),
            ],
            cls,
        )

    return draw


def _rider(x, y, size):
    bike, h = _bicycle(x, y, size), size * 0.45

    def draw(cv: Canvas):
        bike(cv)
        cls = C["rider"]
        cv.ellipse(x, y - h * 0.75, h * 0.13, h * 0.22, cls)
        cv.ellipse(x + h * 0.05, y - h * 1.02, h * 0.08, h * 0.08, cls)

    return draw


def _pole(x, y, size, carries: str):
    h, w = size * 0.9, max(1.0, size * 0.025)

    def draw(cv: Canvas):
        cv.rect(x - w / 2, y - h, x + w / 2, y, C["pole"])
        if carries == "light":
            cv.rect(x - w * 1.8, y - h, x + w * 1.8, y - h + w * 7, C["traffic light"])
        elif carries == "sign":
            cv.ellipse(x, y - h * 0.85, w * 3, w * 3, C["traffic sign"])

    return draw


def _tree(x, y, size):
    h = size * 1.1

    def draw(cv: Canvas):
        cv.rect(x - h * 0.03, y - h * 0.5, x + h * 0.03, y, C["vegetation"])
        cv.ellipse(x, y - h * 0.7, h * 0.3, h * 0.3, C["vegetation"])

    return draw
