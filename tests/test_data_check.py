import json

import numpy as np
from PIL import Image

from genadapt.commands.data import cli
from genadapt.data_check import check_dataset
from genadapt.datasets import get_dataset_kind

from fake_datasets import write_cityscapes, write_gta5, write_synthia


def test_clean_dataset_passes(tmp_path, capsys):
    write_synthia(tmp_path)
    assert cli(["check", "--dataset", "synthia", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 images, 2 labels" in out and "OK" in out


def test_every_defect_is_reported(tmp_path, capsys):
    write_gta5(tmp_path, n=6, mismatch=0)
    (tmp_path / "labels/00001.png").unlink()  # image without label
    Image.new("L", (4, 4)).save(tmp_path / "labels/99999.png")  # label without image
    (tmp_path / "images/00002.png").write_bytes(b"\x89PNG broken")  # unreadable
    bad = np.asarray(Image.open(tmp_path / "labels/00003.png")).copy()
    bad[0, 0] = 200  # not a Cityscapes labelId
    Image.fromarray(bad).save(tmp_path / "labels/00003.png")

    report = check_dataset(get_dataset_kind("gta5"), tmp_path)
    assert (report.images, report.labels) == (6, 6)
    assert [p.endswith("00001.png") for p in report.missing_labels] == [True]
    assert [p.endswith("99999.png") for p in report.orphan_labels] == [True]
    assert len(report.size_mismatches) == 1 and "00000.png" in report.size_mismatches[0]
    assert len(report.unreadable) == 1 and "00002.png" in report.unreadable[0]
    assert len(report.invalid_label_values) == 1 and "[200]" in report.invalid_label_values[0]
    assert report.defects == 5
    assert report.class_pixels["road"] > 0

    assert (
        cli(
            [
                "check",
                "--dataset",
                "gta5",
                "--root",
                str(tmp_path),
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 1
    )
    assert "5 defect(s) found" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["defects"] == 5


def test_cityscapes_split_and_missing_root(tmp_path, capsys):
    write_cityscapes(tmp_path, split="train", n=1)
    assert (
        cli(["check", "--dataset", "cityscapes", "--root", str(tmp_path), "--split", "train"]) == 0
    )
    assert cli(["check", "--dataset", "cityscapes", "--root", str(tmp_path / "x")]) == 2
    assert "genadapt-data check: error: cityscapes folder not found" in capsys.readouterr().err
