import numpy as np
import pytest

from genadapt.commands.data import cli
from genadapt.datasets import SegmentationDataset
from genadapt.labels import CITYSCAPES_NAMES
from genadapt.scenes.generate import SceneSpec, generate_scenes, make_scene

REQUIRED = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
            "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
            "bus", "bicycle"]  # fmt: skip
SIZE = (256, 128)


def scenes(domain: str, n: int, seed: int = 0):
    split = {"source": "all", "target": "train", "unseen": "val", "tune": "val"}[domain]
    return [make_scene(SceneSpec(domain, split, i, SIZE, seed)) for i in range(n)]


@pytest.fixture(scope="module")
def samples():
    return {domain: scenes(domain, 40) for domain in ("source", "target", "unseen", "tune")}


def test_deterministic_for_a_seed():
    a_rgb, a_labels = make_scene(SceneSpec("target", "train", 3, SIZE, seed=7))
    b_rgb, b_labels = make_scene(SceneSpec("target", "train", 3, SIZE, seed=7))
    assert np.array_equal(a_rgb, b_rgb) and np.array_equal(a_labels, b_labels)
    c_rgb, _ = make_scene(SceneSpec("target", "train", 3, SIZE, seed=8))
    assert not np.array_equal(a_rgb, c_rgb)


def test_valid_train_ids_and_every_class_appears(samples):
    for domain, items in samples.items():
        present = set()
        for rgb, labels in items:
            assert rgb.shape == (*SIZE[::-1], 3) and rgb.dtype == np.uint8
            assert labels.max() < 19
            present |= set(np.unique(labels).tolist())
        missing = set(REQUIRED) - {CITYSCAPES_NAMES[i] for i in present}
        assert not missing, f"{domain}: {missing} never appear in 40 scenes"


def class_frequencies(items) -> np.ndarray:
    counts = sum(np.bincount(labels.ravel(), minlength=19) for _, labels in items)
    return counts / counts.sum()


def class_colours(items) -> np.ndarray:
    """(19, 3) mean RGB of each class over a sample (NaN where absent)."""
    sums, counts = np.zeros((19, 3)), np.zeros(19)
    for rgb, labels in items:
        flat = labels.ravel()
        counts += np.bincount(flat, minlength=19)
        for c in range(3):
            sums[:, c] += np.bincount(flat, weights=rgb[..., c].ravel(), minlength=19)
    with np.errstate(invalid="ignore"):  # absent classes (train, motorcycle) become NaN
        return sums / counts[:, None]


def test_looks_share_label_statistics_but_not_image_statistics(samples):
    freqs = {d: class_frequencies(items) for d, items in samples.items()}
    colours = {d: class_colours(items) for d, items in samples.items()}
    # Reference: two independent samples of the same look.
    same_labels = 0.5 * np.abs(freqs["source"] - class_frequencies(scenes("source", 40, 1))).sum()
    same_colours = np.nanmean(np.abs(colours["source"] - class_colours(scenes("source", 40, 1))))
    # The tuning look must be a shift of its own: far from the reported looks, not a copy.
    pairs = [(a, b) for i, a in enumerate(samples) for b in list(samples)[i + 1 :]]
    assert len(pairs) == 6
    for a, b in pairs:
        label_distance = 0.5 * np.abs(freqs[a] - freqs[b]).sum()  # total variation
        colour_distance = np.nanmean(np.abs(colours[a] - colours[b]))  # grey levels per class
        assert label_distance < 0.12, (a, b, label_distance, same_labels)
        assert colour_distance > 30 and colour_distance > 5 * same_colours, (a, b, colour_distance)


def test_generated_folders_pass_check_and_load(tmp_path, capsys):
    generate_scenes(tmp_path, size=SIZE, source=6, target_train=4, target_val=3, unseen=2,
                    workers=2, tune_train=3, tune_val=2)  # fmt: skip

    def check(kind: str, look: str, *split: str) -> int:
        return cli(["check", "--dataset", kind, "--root", str(tmp_path / look), *split])

    assert check("gta5", "source") == 0
    assert check("cityscapes", "tune", "--split", "train") == 0
    assert len(SegmentationDataset("cityscapes", tmp_path / "tune", "val")) == 2
    for look, split in [("target", "train"), ("target", "val"), ("unseen", "val")]:
        assert check("cityscapes", look, "--split", split) == 0
    source = SegmentationDataset("gta5", tmp_path / "source")
    target_val = SegmentationDataset("cityscapes", tmp_path / "target", "val")
    assert (len(source), len(target_val)) == (6, 3)
    rgb, labels = make_scene(SceneSpec("source", "all", 0, SIZE, 0))
    sample = source[0]
    np.testing.assert_array_equal(sample["label"].numpy(), labels)  # labelIds → train ids
    np.testing.assert_array_equal(sample["image"].permute(1, 2, 0).numpy(), rgb)


def test_scenes_cli_rejects_bad_sizes(tmp_path, capsys):
    assert cli(["scenes", "--out", str(tmp_path), "--size", "4096x2048"]) == 2
    assert "between 32x32 and 2048x1024" in capsys.readouterr().err
    assert cli(["scenes", "--out", str(tmp_path), "--size", "wide"]) == 2
