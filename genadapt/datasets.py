"""The four published dataset layouts, read exactly, with labels mapped into a chosen label space.

| kind       | images                                   | labels                                   |
|------------|------------------------------------------|------------------------------------------|
| gta5       | images/*.png                             | labels/*.png (Cityscapes labelIds)       |
| synthia    | RGB/*.png                                | GT/LABELS/*.png (16-bit, id in red)      |
| cityscapes | leftImg8bit/SPLIT/CITY/*_leftImg8bit.png | gtFine/SPLIT/CITY/*_gtFine_labelIds.png  |
| camvid     | SPLIT/*.png                              | SPLITannot/*.png (SegNet 11-class ids)   |

Samples are uint8 tensors: image (3, H, W) and label (H, W) holding class ids of the label space
(255 = ignore). Normalization happens on the device that runs the network, where it is free.
Images are decoded by `imaging.network_input`, the one function that predict and serve use, so
that training and evaluation see exactly the pixels a deployed model is given.
A sample that cannot be read, or whose label size differs from its image (GTA5 has some), is
skipped with a warning and replaced by the next one, so a long run never dies on one bad file.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from genadapt.errors import GenadaptError
from genadapt.imaging import decode_image, network_input, probe_size
from genadapt.labels import (
    CAMVID10,
    CITYSCAPES19,
    SYNTHIA16,
    LabelSpace,
    camvid_lut,
    cityscapes_lut,
    synthia_lut,
)

log = logging.getLogger(__name__)

Pair = tuple[Path, Path | None]


class DatasetError(GenadaptError):
    """A dataset folder that is missing or not in the expected layout."""


def read_label_png(path: Path) -> np.ndarray:
    """Ids stored as pixel values of an 8-bit (L or palette) PNG; palette indices are the ids."""
    with Image.open(path) as img:
        if img.mode not in ("L", "P", "I;16", "I"):
            raise ValueError(f"label {path} has mode {img.mode}, expected single-channel ids")
        return np.asarray(img).astype(np.int64)


def read_synthia_label(path: Path) -> np.ndarray:
    """SYNTHIA's 16-bit 3-channel PNG: the class id is the red channel. Pillow cannot read it."""
    import cv2  # imported here: only SYNTHIA needs OpenCV

    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None or array.ndim != 3:
        raise ValueError(f"cannot read SYNTHIA label {path} as a 3-channel image")
    return array[:, :, 2].astype(np.int64)  # OpenCV gives BGR: red is channel 2


def _same_name(folder: str) -> Callable[[Path, str, Path], Path]:
    return lambda root, split, image: root / folder.replace("SPLIT", split) / image.name


def _cityscapes_label(root: Path, split: str, image: Path) -> Path:
    name = image.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png")
    return root / "gtFine" / split / image.parent.name / name


@dataclass(frozen=True)
class DatasetKind:
    """What differs between the published layouts. SPLIT in a pattern stands for the split."""

    name: str
    image_glob: str
    label_glob: str
    label_for: Callable[[Path, str, Path], Path]  # (root, split, image path) → label path
    read_label: Callable[[Path], np.ndarray]
    lookup: Callable[[LabelSpace], np.ndarray]  # raw id → class id in a label space
    classes: LabelSpace  # the classes this dataset annotates
    max_raw_id: int  # larger raw ids are not valid labels of this dataset
    default_split: str = "all"
    # The authors' training frames (their segmentation_datasets.py): GTA5 resized to 1280 wide
    # with its aspect kept; SYNTHIA and Cityscapes at full scale (None). Random crops of those.
    authors_frame_width: int | None = None

    def pairs(self, root: Path, split: str) -> list[Pair]:
        images = sorted(root.glob(self.image_glob.replace("SPLIT", split)))
        return [(p, self.label_for(root, split, p)) for p in images]

    def labels(self, root: Path, split: str) -> list[Path]:
        return sorted(root.glob(self.label_glob.replace("SPLIT", split)))


DATASET_KINDS: dict[str, DatasetKind] = {
    kind.name: kind
    for kind in (
        DatasetKind(
            name="gta5",
            image_glob="images/*.png",
            label_glob="labels/*.png",
            label_for=_same_name("labels"),
            read_label=read_label_png,
            lookup=cityscapes_lut,
            classes=CITYSCAPES19,
            max_raw_id=33,
            authors_frame_width=1280,
        ),
        DatasetKind(
            name="synthia",
            image_glob="RGB/*.png",
            label_glob="GT/LABELS/*.png",
            label_for=_same_name("GT/LABELS"),
            read_label=read_synthia_label,
            lookup=synthia_lut,
            classes=SYNTHIA16,
            max_raw_id=22,
        ),
        DatasetKind(
            name="cityscapes",
            image_glob="leftImg8bit/SPLIT/*/*_leftImg8bit.png",
            label_glob="gtFine/SPLIT/*/*_gtFine_labelIds.png",
            label_for=_cityscapes_label,
            read_label=read_label_png,
            lookup=cityscapes_lut,
            classes=CITYSCAPES19,
            max_raw_id=33,
            default_split="val",
        ),
        DatasetKind(
            name="camvid",
            image_glob="SPLIT/*.png",
            label_glob="SPLITannot/*.png",
            label_for=_same_name("SPLITannot"),
            read_label=read_label_png,
            lookup=camvid_lut,
            classes=CAMVID10,
            max_raw_id=11,
            default_split="test",
        ),
    )
}


def get_dataset_kind(name: str) -> DatasetKind:
    try:
        return DATASET_KINDS[name]
    except KeyError:
        raise DatasetError(
            f"unknown dataset kind {name!r}; choose one of {sorted(DATASET_KINDS)}"
        ) from None


def list_pairs(kind: DatasetKind, root: Path, split: str | None = None) -> list[Pair]:
    """All (image, label) pairs of a dataset folder; a clear error if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{kind.name} folder not found: {root}")
    split = split or kind.default_split
    pairs = kind.pairs(root, split)
    if not pairs:
        raise DatasetError(
            f"no {kind.name} images under {root} (split {split!r}); expected "
            f"{kind.image_glob} with labels in {kind.label_glob} (SPLIT = the split)"
        )
    return pairs


RESIZE_RULES = ("cover", "stretch", "authors")


@dataclass(frozen=True)
class Transform:
    """Training: the frame brought to the network's scale, then a random window of the
    training size. Evaluation: the image resized to `size`, the label kept at full resolution.

    `size` and `crop` are (W, H); the training window is `crop` or else `size`. `resize` says
    how a training frame reaches its scale: "cover" keeps its aspect and scales it to just cover
    `size` (a 1914×1052 GTA5 frame → 1024×563, then a random 1024×512 window; a frame of the
    window's aspect is simply resized), "stretch" resizes it to `size` whatever its aspect, and
    "authors" is the authors' rule: frames resized to `frame_width` with the aspect kept (GTA5
    1280), or kept at full scale (None: SYNTHIA, Cityscapes), with a `crop` window.
    The image arrives at that scale already (`decode`); the label is resized here, nearest.
    """

    size: tuple[int, int]
    crop: tuple[int, int] | None = None
    hflip: bool = False
    train: bool = True
    resize: str = "cover"
    frame_width: int | None = None

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_RULES:
            raise ValueError(f"resize must be one of {RESIZE_RULES}, got {self.resize!r}")

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """(W, H) a frame of `width`×`height` is decoded at, before the window is cut."""
        if not self.train or self.resize == "stretch":
            return self.size
        if self.resize == "authors":
            if self.frame_width is None:
                return width, height
            return self.frame_width, int(self.frame_width / (width / height))  # as theirs
        scale = max(self.size[0] / width, self.size[1] / height)
        return max(self.size[0], round(width * scale)), max(self.size[1], round(height * scale))

    def decode(self, data: bytes, original: tuple[int, int]) -> np.ndarray:
        """The encoded image, whose header says it is `original` = (W, H), as the network sees
        it: `network_input`, as predict and serve, at the frame size."""
        return network_input(data, self.frame_size(*original))

    def __call__(self, rgb: np.ndarray, label: np.ndarray | None, rng: random.Random):
        if not self.train:
            return rgb, label  # evaluation scores against the full-resolution labels
        frame = (rgb.shape[1], rgb.shape[0])
        if label is not None and (label.shape[1], label.shape[0]) != frame:
            label = np.asarray(Image.fromarray(label).resize(frame, Image.Resampling.NEAREST))
        return self._crop_flip(rgb, label, rng)

    def _crop_flip(self, rgb: np.ndarray, label: np.ndarray | None, rng: random.Random):
        cw, ch = self.crop or self.size
        height, width = rgb.shape[:2]
        if cw > width or ch > height:
            raise ValueError(f"a {cw}x{ch} window does not fit in a {width}x{height} frame")
        if (cw, ch) != (width, height):
            x0, y0 = rng.randint(0, width - cw), rng.randint(0, height - ch)
            rgb = rgb[y0 : y0 + ch, x0 : x0 + cw]
            label = None if label is None else label[y0 : y0 + ch, x0 : x0 + cw]
        if self.hflip and rng.random() < 0.5:
            rgb = rgb[:, ::-1]
            label = None if label is None else label[:, ::-1]
        return rgb, label


class SegmentationDataset(Dataset):
    """One dataset folder of any kind, labels mapped into `label_space`."""

    def __init__(
        self,
        kind: str,
        root: str | Path,
        split: str | None = None,
        label_space: LabelSpace = CITYSCAPES19,
        transform: Transform | None = None,
        with_labels: bool = True,
        seed: int = 0,
    ) -> None:
        self.kind = get_dataset_kind(kind)
        self.root = Path(root)
        self.pairs = list_pairs(self.kind, self.root, split)
        self.label_space = label_space
        self.lookup = self.kind.lookup(label_space)
        self.transform = transform
        self.with_labels = with_labels
        self.seed = seed
        self.skipped: set[int] = set()

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """RGB (H, W, 3), decoded at the transform's size when there is one (else in full), and
        label ids in the label space at the image's full resolution (H, W)."""
        image_path, label_path = self.pairs[index]
        data = image_path.read_bytes()
        width, height = probe_size(data)  # the header, read once: frame size and label check
        if self.transform is not None:
            rgb = self.transform.decode(data, (width, height))
        else:
            rgb = decode_image(data)
        if not self.with_labels:
            return rgb, None
        if label_path is None or not label_path.is_file():
            raise ValueError(f"label missing for {image_path}")
        raw = self.kind.read_label(label_path)
        if raw.shape != (height, width):
            raise ValueError(
                f"image is {width}x{height} but its label is {raw.shape[1]}x{raw.shape[0]}"
            )
        return rgb, self.lookup[np.clip(raw, 0, len(self.lookup) - 1)]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        return self.get(index, random.Random(self.seed * 1_000_003 + index))

    def get(self, index: int, rng: random.Random) -> dict[str, torch.Tensor | int]:
        """Sample `index` (or the next readable one), transformed with randomness from `rng`."""
        for attempt in range(len(self.pairs)):
            i = (index + attempt) % len(self.pairs)
            try:
                rgb, label = self.load(i)
                break
            except (OSError, ValueError, GenadaptError) as exc:
                if i not in self.skipped:
                    self.skipped.add(i)
                    log.warning("skipping %s sample %s: %s", self.kind.name, self.pairs[i][0], exc)
        else:
            raise DatasetError(f"no readable sample in {self.root}")
        if self.transform is not None:
            rgb, label = self.transform(rgb, label, rng)
        sample: dict[str, torch.Tensor | int] = {
            "image": torch.from_numpy(np.require(rgb, requirements=["C", "W"])).permute(
                2, 0, 1
            ),  # (3, H, W)
            "index": i,
        }
        if label is not None:
            sample["label"] = torch.from_numpy(
                np.require(label, requirements=["C", "W"])
            )  # (H, W) uint8
        return sample
