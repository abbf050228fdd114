"""Label spaces: the classes a head predicts, their colours, and id → train-id lookup tables.

Every dataset stores its own ids (Cityscapes/GTA5 labelIds, SYNTHIA ids, CamVid SegNet ids).
They are all mapped through the Cityscapes 19 train ids, then into the chosen label space
(19, SYNTHIA-16, SYNTHIA-13 or the classes common with CamVid). 255 means "ignore" everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_ID = 255

# (name, Cityscapes labelId, colour) in train-id order 0..18.
_CITYSCAPES_19: tuple[tuple[str, int, tuple[int, int, int]], ...] = (
    ("road", 7, (128, 64, 128)),
    ("sidewalk", 8, (244, 35, 232)),
    ("building", 11, (70, 70, 70)),
    ("wall", 12, (102, 102, 156)),
    ("fence", 13, (190, 153, 153)),
    ("pole", 17, (153, 153, 153)),
    ("traffic light", 19, (250, 170, 30)),
    ("traffic sign", 20, (220, 220, 0)),
    ("vegetation", 21, (107, 142, 35)),
    ("terrain", 22, (152, 251, 152)),
    ("sky", 23, (70, 130, 180)),
    ("person", 24, (220, 20, 60)),
    ("rider", 25, (255, 0, 0)),
    ("car", 26, (0, 0, 142)),
    ("truck", 27, (0, 0, 70)),
    ("bus", 28, (0, 60, 100)),
    ("train", 31, (0, 80, 100)),
    ("motorcycle", 32, (0, 0, 230)),
    ("bicycle", 33, (119, 11, 32)),
)
CITYSCAPES_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _CITYSCAPES_19)
CITYSCAPES_LABEL_IDS: tuple[int, ...] = tuple(label_id for _, label_id, _ in _CITYSCAPES_19)
CITYSCAPES_PALETTE: tuple[tuple[int, int, int], ...] = tuple(c for _, _, c in _CITYSCAPES_19)

# SYNTHIA-RAND-CITYSCAPES class id (red channel of GT/LABELS) → Cityscapes train id.
SYNTHIA_TO_TRAIN_ID: dict[int, int] = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 1: 10,
    10: 11, 17: 12, 8: 13, 19: 15, 12: 17, 11: 18,
}  # fmt: skip

# CamVid's 11-class SegNet ids → Cityscapes train id. Bicyclist (10) spans Cityscapes' rider and
# bicycle, so it is ignored; what is left are the 10 classes common to CamVid, SYNTHIA and
# Cityscapes that the paper evaluates (Sec. 5.3, Table 5).
CAMVID_TO_TRAIN_ID: dict[int, int] = {
    0: 10, 1: 2, 2: 5, 3: 0, 4: 1, 5: 8, 6: 7, 7: 4, 8: 13, 9: 11,
}  # fmt: skip


@dataclass(frozen=True)
class LabelSpace:
    """The K classes a segmentation head predicts, as a subset of the Cityscapes 19 train ids."""

    name: str
    cityscapes_ids: tuple[int, ...]  # Cityscapes train id of each class, in head order

    @property
    def num_classes(self) -> int:
        return len(self.cityscapes_ids)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(CITYSCAPES_NAMES[i] for i in self.cityscapes_ids)

    @property
    def palette(self) -> tuple[tuple[int, int, int], ...]:
        return tuple(CITYSCAPES_PALETTE[i] for i in self.cityscapes_ids)

    def palette_array(self) -> np.ndarray:
        """(256, 3) uint8 colours indexed by class id; ignore and unknown ids are black."""
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: self.num_classes] = np.asarray(self.palette, dtype=np.uint8)
        return table

    def from_cityscapes_train_ids(self) -> np.ndarray:
        """(256,) uint8 table: Cityscapes train id → class id in this space (255 if absent)."""
        table = np.full(256, IGNORE_ID, dtype=np.uint8)
        for own_id, cs_id in enumerate(self.cityscapes_ids):
            table[cs_id] = own_id
        return table

    def subset_indices(self, other: LabelSpace) -> list[int]:
        """Indices of `other`'s classes in this space, e.g. SYNTHIA-16 inside a 19-way head."""
        missing = [
            CITYSCAPES_NAMES[i] for i in other.cityscapes_ids if i not in self.cityscapes_ids
        ]
        if missing:
            raise ValueError(
                f"label space {self.name!r} lacks classes of {other.name!r}: {missing}"
            )
        return [self.cityscapes_ids.index(i) for i in other.cityscapes_ids]

    def to_dict(self) -> dict:
        return {"name": self.name, "cityscapes_ids": list(self.cityscapes_ids)}

    @classmethod
    def from_dict(cls, data: dict) -> LabelSpace:
        return cls(
            name=str(data["name"]), cityscapes_ids=tuple(int(i) for i in data["cityscapes_ids"])
        )


def _without(space: LabelSpace, name: str, drop: tuple[str, ...]) -> LabelSpace:
    ids = tuple(i for i in space.cityscapes_ids if CITYSCAPES_NAMES[i] not in drop)
    return LabelSpace(name=name, cityscapes_ids=ids)


CITYSCAPES19 = LabelSpace("cityscapes19", tuple(range(19)))
SYNTHIA16 = _without(CITYSCAPES19, "synthia16", ("terrain", "truck", "train"))
SYNTHIA13 = _without(SYNTHIA16, "synthia13", ("wall", "fence", "pole"))
CAMVID10 = LabelSpace("camvid10", tuple(sorted(set(CAMVID_TO_TRAIN_ID.values()))))

LABEL_SPACES: dict[str, LabelSpace] = {
    s.name: s for s in (CITYSCAPES19, SYNTHIA16, SYNTHIA13, CAMVID10)
}


def get_label_space(name: str) -> LabelSpace:
    """The label space called `name`; raises ValueError listing the known ones."""
    try:
        return LABEL_SPACES[name]
    except KeyError:
        raise ValueError(
            f"unknown label space {name!r}; choose one of {sorted(LABEL_SPACES)}"
        ) from None


def _compose(raw_to_cityscapes: dict[int, int], space: LabelSpace) -> np.ndarray:
    to_space = space.from_cityscapes_train_ids()
    table = np.full(65536, IGNORE_ID, dtype=np.uint8)  # SYNTHIA's ids live in 16-bit PNGs
    for raw_id, cs_id in raw_to_cityscapes.items():
        table[raw_id] = to_space[cs_id]
    return table


def cityscapes_lut(space: LabelSpace = CITYSCAPES19) -> np.ndarray:
    """Lookup table Cityscapes/GTA5 labelId → class id in `space` (index it with the label map)."""
    return _compose(dict(zip(CITYSCAPES_LABEL_IDS, range(19), strict=True)), space)


def synthia_lut(space: LabelSpace = SYNTHIA16) -> np.ndarray:
    """Lookup table SYNTHIA class id → class id in `space`."""
    return _compose(SYNTHIA_TO_TRAIN_ID, space)


def camvid_lut(space: LabelSpace = CAMVID10) -> np.ndarray:
    """Lookup table CamVid SegNet-11 id → class id in `space`."""
    return _compose(CAMVID_TO_TRAIN_ID, space)
