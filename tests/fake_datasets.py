"""Tiny datasets written in the exact on-disk layouts, with the train ids they must read back as."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from genadapt.labels import CAMVID_TO_TRAIN_ID, CITYSCAPES_LABEL_IDS, SYNTHIA_TO_TRAIN_ID


def random_train_ids(rng: np.random.Generator, size: tuple[int, int], ids: list[int]) -> np.ndarray:
    """(H, W) blocks of Cityscapes train ids drawn from `ids`, plus a stripe of 255 (ignore)."""
    w, h = size
    blocks = rng.choice(ids, size=(max(1, h // 4), max(1, w // 4)))
    train = np.kron(blocks, np.ones((4, 4), dtype=np.int64))[:h, :w].astype(np.uint8)
    train[:, 0] = 255
    return train


def _image(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _raw_ids(train: np.ndarray, to_train: dict[int, int], void: int) -> np.ndarray:
    inverse = np.full(256, void, dtype=np.int64)
    for raw, train_id in to_train.items():
        inverse[train_id] = raw
    return inverse[train]


CITYSCAPES_TO_TRAIN = dict(zip(CITYSCAPES_LABEL_IDS, range(19), strict=True))


def _palette_png(ids: np.ndarray, path: Path) -> None:
    # GTA5 ships labels as palette PNGs whose indices are the labelIds.
    img = Image.fromarray(ids.astype(np.uint8), mode="L").convert("P")
    img.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    img.save(path)


def write_gta5(root: Path, n: int = 3, size=(64, 48), mismatch: int | None = None, seed=0):
    """Returns the expected train ids per image name; `mismatch` gets a label of another size."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    expected = {}
    for i in range(n):
        name = f"{i:05d}.png"
        train = random_train_ids(rng, size, list(range(19)))
        _image(rng, size).save(root / "images" / name)
        raw = _raw_ids(train, CITYSCAPES_TO_TRAIN, void=0)
        if i == mismatch:
            raw = np.pad(raw, ((0, 4), (0, 2)))
        else:
            expected[name] = train
        _palette_png(raw, root / "labels" / name)
    return expected


def write_synthia(root: Path, n: int = 2, size=(64, 32), seed=0):
    rng = np.random.default_rng(seed)
    (root / "RGB").mkdir(parents=True)
    (root / "GT" / "LABELS").mkdir(parents=True)
    expected = {}
    synthia_train_ids = sorted(set(SYNTHIA_TO_TRAIN_ID.values()))
    for i in range(n):
        name = f"{i:07d}.png"
        train = random_train_ids(rng, size, synthia_train_ids)
        _image(rng, size).save(root / "RGB" / name)
        # 16-bit, 3 channels, class id in red; OpenCV writes BGR, so red is channel 2.
        label = np.zeros((size[1], size[0], 3), dtype=np.uint16)
        label[:, :, 2] = _raw_ids(train, SYNTHIA_TO_TRAIN_ID, void=0)
        label[:, :, 1] = rng.integers(0, 1000, label.shape[:2])  # instance ids, unused
        assert cv2.imwrite(str(root / "GT" / "LABELS" / name), label)
        expected[name] = train
    return expected


def write_cityscapes(root: Path, split="val", cities=("aachen", "bonn"), n=2, size=(64, 32),
                     seed=0, labels=True):  # fmt: skip
    rng = np.random.default_rng(seed)
    expected = {}
    for city in cities:
        (root / "leftImg8bit" / split / city).mkdir(parents=True)
        (root / "gtFine" / split / city).mkdir(parents=True)
        for i in range(n):
            stem = f"{city}_{i:06d}_000019"
            train = random_train_ids(rng, size, list(range(19)))
            _image(rng, size).save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
            if labels:
                raw = _raw_ids(train, CITYSCAPES_TO_TRAIN, void=0).astype(np.uint8)
                Image.fromarray(raw).save(
                    root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"
                )
            expected[f"{stem}_leftImg8bit.png"] = train
    return expected


def write_camvid(root: Path, split="test", n=2, size=(48, 36), seed=0):
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True)
    (root / f"{split}annot").mkdir(parents=True)
    expected = {}
    for i in range(n):
        name = f"0001TP_{i:06d}.png"
        train = random_train_ids(rng, size, sorted(set(CAMVID_TO_TRAIN_ID.values())))
        _image(rng, size).save(root / split / name)
        raw = _raw_ids(train, CAMVID_TO_TRAIN_ID, void=11).astype(np.uint8)
        Image.fromarray(raw).save(root / f"{split}annot" / name)
        expected[name] = train
    return expected
