import io
import logging
import random

import numpy as np
import pytest
from PIL import Image

from genadapt.datasets import DatasetError, SegmentationDataset, Transform
from genadapt.labels import CAMVID10, CITYSCAPES19, SYNTHIA16

from fake_datasets import write_camvid, write_cityscapes, write_gta5, write_synthia


def read_all(dataset):
    return {dataset.pairs[s["index"]][0].name: s for s in (dataset[i] for i in range(len(dataset)))}


def in_space(train_ids: np.ndarray, space) -> np.ndarray:
    return space.from_cityscapes_train_ids()[train_ids]


def test_gta5_reads_train_ids_and_skips_size_mismatch(tmp_path, caplog):
    expected = write_gta5(tmp_path, n=3, mismatch=1)
    dataset = SegmentationDataset("gta5", tmp_path)
    assert len(dataset) == 3
    with caplog.at_level(logging.WARNING):
        samples = read_all(dataset)
    assert "00001.png: image is 64x48 but its label is 66x52" in caplog.text
    assert dataset.skipped == {1}
    assert set(samples) == set(expected)
    for name, train in expected.items():
        assert samples[name]["image"].shape == (3, 48, 64)
        np.testing.assert_array_equal(samples[name]["label"].numpy(), train)


def test_synthia_16bit_labels_in_16_and_19_class_spaces(tmp_path):
    expected = write_synthia(tmp_path)
    for space in (SYNTHIA16, CITYSCAPES19):
        samples = read_all(SegmentationDataset("synthia", tmp_path, label_space=space))
        for name, train in expected.items():
            np.testing.assert_array_equal(samples[name]["label"].numpy(), in_space(train, space))


def test_cityscapes_splits_and_unlabeled_target(tmp_path):
    expected = write_cityscapes(tmp_path, split="val")
    write_cityscapes(tmp_path, split="train", n=3, labels=False)
    samples = read_all(SegmentationDataset("cityscapes", tmp_path, "val"))
    assert set(samples) == set(expected)
    for name, train in expected.items():
        np.testing.assert_array_equal(samples[name]["label"].numpy(), train)
    target = SegmentationDataset("cityscapes", tmp_path, "train", with_labels=False)
    assert len(target) == 6 and "label" not in target[0]


def test_camvid_common_classes(tmp_path):
    expected = write_camvid(tmp_path)
    samples = read_all(SegmentationDataset("camvid", tmp_path, label_space=CITYSCAPES19))
    for name, train in expected.items():
        np.testing.assert_array_equal(samples[name]["label"].numpy(), train)
    in_camvid_space = read_all(SegmentationDataset("camvid", tmp_path, label_space=CAMVID10))
    name, train = next(iter(expected.items()))
    np.testing.assert_array_equal(in_camvid_space[name]["label"].numpy(), in_space(train, CAMVID10))


def test_missing_folder_and_wrong_layout_are_clear(tmp_path):
    with pytest.raises(DatasetError, match="folder not found"):
        SegmentationDataset("gta5", tmp_path / "nope")
    (tmp_path / "pictures").mkdir()
    with pytest.raises(DatasetError, match=r"expected images/\*\.png"):
        SegmentationDataset("gta5", tmp_path)
    with pytest.raises(DatasetError, match="unknown dataset kind"):
        SegmentationDataset("kitti", tmp_path)


def test_train_transform_resizes_then_crops_and_eval_keeps_full_labels(tmp_path):
    write_gta5(tmp_path, n=1, size=(128, 64))
    dataset = SegmentationDataset("gta5", tmp_path, transform=Transform((64, 32), crop=(32, 16)))
    sample = dataset[0]
    assert sample["image"].shape == (3, 16, 32) and sample["label"].shape == (16, 32)
    dataset.transform = Transform((64, 32), train=False)
    sample = dataset[0]
    assert sample["image"].shape == (3, 32, 64) and sample["label"].shape == (64, 128)


def test_crop_and_flip_keep_image_and_label_aligned():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, :4] = 255
    label = (rgb[:, :, 0] > 0).astype(np.uint8)
    transform = Transform((8, 8), crop=(4, 4), hflip=True)
    for seed in range(10):
        out_rgb, out_label = transform(rgb, label, random.Random(seed))
        np.testing.assert_array_equal(out_rgb[:, :, 0] > 0, out_label == 1)


@pytest.mark.parametrize(
    ("resize", "kind", "frame"),
    [
        ("cover", "gta5", (64, 35)),  # 96x53 scaled by 2/3 with its aspect: covers 64x32
        ("stretch", "gta5", (64, 32)),  # squashed, as genadapt did before
        ("authors", "gta5", (80, 44)),  # GTA5 to the authors' width (80 here), aspect kept
        ("authors", "cityscapes", (96, 53)),  # Cityscapes at full scale
    ],
)
def test_training_frames_reach_the_network_scale_by_the_chosen_rule(resize, kind, frame):
    transform = Transform((64, 32), crop=(32, 16) if resize == "authors" else None, resize=resize,
                          frame_width=80 if kind == "gta5" else None)  # fmt: skip
    assert transform.frame_size(96, 53) == frame
    image = np.zeros((53, 96, 3), np.uint8)
    image[:, 48:] = 200  # the right half is bright, its label 1: they must stay aligned
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    rgb = transform.decode(buf.getvalue(), (96, 53))
    assert (rgb.shape[1], rgb.shape[0]) == frame
    label = (image[:, :, 0] > 0).astype(np.uint8)
    for seed in range(5):
        window, window_label = transform(rgb, label, random.Random(seed))
        assert (window.shape[1], window.shape[0]) == (transform.crop or (64, 32))
        bright = window[:, :, 0] > 100
        assert (bright == (window_label == 1)).mean() > 0.9  # resampling blurs the one edge
    # Evaluation always sees the image at the network size, as predict and serve do.
    evaluation = Transform((64, 32), train=False, resize=resize)
    assert evaluation.decode(buf.getvalue(), (96, 53)).shape == (32, 64, 3)
