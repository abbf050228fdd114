"""Trainer test helpers: a learnable tiny GTA5 and the flags of a tiny run."""

from __future__ import annotations

import numpy as np
from PIL import Image

from genadapt.labels import cityscapes_lut


def write_learnable_gta5(root, n=6, size=(64, 32), seed=0):
    """Images whose colour says the class: a small network can learn them exactly."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    label_ids = np.array([7, 11, 21, 23, 26])  # road, building, vegetation, sky, car
    colours = rng.integers(0, 256, (len(label_ids), 3))
    lut = cityscapes_lut()
    for i in range(n):
        blocks = rng.integers(0, len(label_ids), (size[1] // 8, size[0] // 8))
        cls = np.kron(blocks, np.ones((8, 8), int))
        Image.fromarray(colours[cls].astype(np.uint8)).save(root / "images" / f"{i:05d}.png")
        Image.fromarray(label_ids[cls].astype(np.uint8)).save(root / "labels" / f"{i:05d}.png")
    assert set(lut[label_ids]) == {0, 2, 8, 10, 13}


def args_for(data, out, *extra):
    return ["--preset", "cpu-tiny", "--source-root", str(data / "gta5"),
            "--target-root", str(data / "cs"), "--out", str(out), *extra]  # fmt: skip
