import numpy as np
import pytest

from genadapt.labels import (
    CAMVID10,
    CITYSCAPES19,
    IGNORE_ID,
    SYNTHIA13,
    SYNTHIA16,
    camvid_lut,
    cityscapes_lut,
    get_label_space,
    synthia_lut,
)


def test_cityscapes_label_ids_map_to_train_ids():
    lut = cityscapes_lut()
    label_ids = np.array([[7, 8, 11, 26], [33, 0, 1, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(lut[label_ids], [[0, 1, 2, 13], [18, 255, 255, 255]])
    assert (lut[np.arange(256)] != IGNORE_ID).sum() == 19


def test_synthia_ids_map_into_16_and_19_classes():
    ids = np.array([3, 4, 2, 21, 1, 8, 11, 0, 13], dtype=np.uint16)
    # In the 16-class space, sky (Cityscapes 10) is class 9 since terrain (9) is absent.
    np.testing.assert_array_equal(synthia_lut(SYNTHIA16)[ids], [0, 1, 2, 3, 9, 12, 15, 255, 255])
    np.testing.assert_array_equal(
        synthia_lut(CITYSCAPES19)[ids], [0, 1, 2, 3, 10, 13, 18, 255, 255]
    )
    # SYNTHIA-13 drops wall, fence and pole.
    assert synthia_lut(SYNTHIA13)[21] == IGNORE_ID


def test_subsets_and_names():
    assert CITYSCAPES19.num_classes == 19 and SYNTHIA16.num_classes == 16
    assert SYNTHIA13.num_classes == 13 and CAMVID10.num_classes == 10
    assert {"terrain", "truck", "train"}.isdisjoint(SYNTHIA16.names)
    assert {"wall", "fence", "pole"}.isdisjoint(SYNTHIA13.names)
    assert CITYSCAPES19.subset_indices(SYNTHIA16) == [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        10,
        11,
        12,
        13,
        15,
        17,
        18,
    ]
    with pytest.raises(ValueError, match="lacks"):
        SYNTHIA13.subset_indices(CITYSCAPES19)


def test_camvid_and_palette():
    lut = camvid_lut()
    assert CAMVID10.names[lut[0]] == "sky" and CAMVID10.names[lut[9]] == "person"
    assert lut[10] == IGNORE_ID  # bicyclist spans rider and bicycle
    palette = CITYSCAPES19.palette_array()
    assert palette.shape == (256, 3) and tuple(palette[0]) == (128, 64, 128)
    assert tuple(palette[IGNORE_ID]) == (0, 0, 0)


def test_unknown_label_space():
    assert get_label_space("synthia16") is SYNTHIA16
    with pytest.raises(ValueError, match="unknown label space"):
        get_label_space("ade20k")
