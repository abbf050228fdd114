import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genadapt.commands.predict import cli
from genadapt.labels import CITYSCAPES19

from helpers import TINY_INPUT

OUTPUT_SIZE = (2 * TINY_INPUT[0], 2 * TINY_INPUT[1])  # (W, H): twice the network size


def write_images(folder):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (300, 500, 3), np.uint8)).save(folder / "wide.jpg")
    Image.fromarray(rng.integers(0, 255, (97, 61), np.uint8)).save(folder / "gray_small.png")
    (folder / "nested").mkdir()
    Image.fromarray(rng.integers(0, 255, (40, 40, 4), np.uint8)).save(folder / "nested/rgba.webp")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    (folder / "notes.txt").write_text("not an image, not picked up")


def test_predict_writes_outputs_and_reports_bad_file(tmp_path, checkpoint_path, caplog):
    write_images(tmp_path / "in")
    single = tmp_path / "single.bmp"
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(single)
    out = tmp_path / "out"

    status = cli([str(checkpoint_path), str(tmp_path / "in"), str(single), "--out", str(out)])

    assert status == 1  # one bad file among good ones
    assert "broken.png" in caplog.text
    car = CITYSCAPES19.names.index("car")
    for stem in ["wide", "gray_small", "nested/rgba", "single"]:
        labels = np.asarray(Image.open(out / f"{stem}_labels.png"))
        assert labels.shape == (OUTPUT_SIZE[1], OUTPUT_SIZE[0]) and labels.dtype == np.uint8
        assert (labels == car).all()  # the fixture's network says "car" everywhere
        color = np.asarray(Image.open(out / f"{stem}_color.png"))
        assert tuple(color[0, 0]) == CITYSCAPES19.palette[car]
        assert Image.open(out / f"{stem}_overlay.jpg").size == OUTPUT_SIZE
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["processed"] == 4 and list(summary["failed"]) == [
        str(tmp_path / "in/broken.png")
    ]
    assert not (out / "broken_labels.png").exists()


def test_same_names_do_not_overwrite(tmp_path, checkpoint_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / sub / "frame.png")
    files = [str(tmp_path / "a/frame.png"), str(tmp_path / "b/frame.png")]
    assert cli([str(checkpoint_path), *files, "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out/frame_labels.png").exists()
    assert (tmp_path / "out/frame_1_labels.png").exists()


def test_bad_checkpoint_and_missing_input_are_one_line_errors(tmp_path, capsys, checkpoint_path):
    (tmp_path / "img.png").write_bytes(b"")
    (tmp_path / "fake.pt").write_bytes(b"nope")
    assert cli(["fake.pt", str(tmp_path / "img.png"), "--out", str(tmp_path / "o")]) == 2
    assert cli([str(tmp_path / "fake.pt"), str(tmp_path / "img.png"), "--out", "o"]) == 2
    assert cli([str(checkpoint_path), str(tmp_path / "nothing"), "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert "genadapt-predict: error: model not found" in err
    assert "cannot read" in err and "input not found" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("batch_size", [1, 3])
def test_console_script_end_to_end(tmp_path, checkpoint_path, batch_size):
    write_images(tmp_path / "in")
    (tmp_path / "in/broken.png").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "genadapt.commands.predict", str(checkpoint_path),
         str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--batch-size", str(batch_size),
         "--upsample", "nearest"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").rglob("*_labels.png"))) == 3


def test_a_second_run_refuses_to_replace_outputs_unless_told(tmp_path, checkpoint_path, capsys):
    image = tmp_path / "frame.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    out = tmp_path / "out"
    assert cli([str(checkpoint_path), str(image), "--out", str(out)]) == 0
    (out / "frame_labels.png").write_bytes(b"kept")
    assert cli([str(checkpoint_path), str(image), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exist: pass --overwrite" in err and "frame_labels.png" in err
    assert (out / "frame_labels.png").read_bytes() == b"kept"
    assert cli([str(checkpoint_path), str(image), "--out", str(out), "--overwrite"]) == 0
    assert (out / "frame_labels.png").read_bytes() != b"kept"


def test_dangling_and_looping_links_are_failures_not_skipped(tmp_path, checkpoint_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "good.png")
    (folder / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    out = tmp_path / "out"
    assert cli([str(checkpoint_path), str(folder), "--out", str(out)]) == 1
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["processed"] == 1
    assert set(summary["failed"]) == {str(folder / "dangling.jpg"), str(folder / "loop.png")}


def test_an_overflowing_tiff_and_a_folder_named_like_an_image_are_reported(
    tmp_path, checkpoint_path, caplog
):
    from tiff_builder import STRIP_OFFSETS, build_tiff

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / f"good{i}.png")
    # A 64-bit strip offset that made Pillow raise OverflowError: predict used to stop there.
    (folder / "bad.tif").write_bytes(build_tiff({STRIP_OFFSETS: (16, 2**63 + 5)}, bigtiff=True))
    (folder / "folder.jpg").mkdir()
    status = cli([str(checkpoint_path), str(folder), "--out", str(tmp_path / "out")])
    assert status == 1
    summary = json.loads((tmp_path / "out/predict_summary.json").read_text())
    assert summary["processed"] == 3 and list(summary["failed"]) == [str(folder / "bad.tif")]
    assert "folder.jpg: a folder named like an image" in caplog.text


def test_the_summary_is_written_even_when_the_run_stops(tmp_path, checkpoint_path, monkeypatch):
    from genadapt.commands import predict

    write_images(tmp_path / "in")

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(predict, "write_outputs", full_disk)
    assert cli([str(checkpoint_path), str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 2
    summary = json.loads((tmp_path / "out/predict_summary.json").read_text())
    # What it knew when it stopped: the unreadable file, nothing written, three not reached.
    assert summary["processed"] == 0 and summary["not_reached"] == 3
    assert list(summary["failed"]) == [str(tmp_path / "in/broken.png")]
