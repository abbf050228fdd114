import json

import numpy as np
import pytest
import torch
from PIL import Image

from genadapt.checkpoint import Checkpoint, save_checkpoint
from genadapt.commands.eval import cli
from genadapt.datasets import SegmentationDataset
from genadapt.evaluate import evaluate, reported_subsets
from genadapt.labels import CAMVID10, CITYSCAPES19, SYNTHIA13, SYNTHIA16
from genadapt.model import build_model
from genadapt.runtime import TorchSegmenter

from fake_datasets import write_camvid, write_cityscapes
from helpers import TINY, make_checkpoint

CAR = CITYSCAPES19.names.index("car")


def test_protocol_upsamples_to_full_resolution_2048x1024(tmp_path):
    # A 1024x512 network scored against 2048x1024 Cityscapes labels: the prediction must be
    # upsampled x2 to exactly the label size, so every labelled pixel is counted once.
    expected = write_cityscapes(tmp_path, cities=("bonn",), n=1, size=(2048, 1024))
    torch.manual_seed(0)
    model = build_model(TINY)
    with torch.no_grad():
        model.score_fr.bias[CAR] = 5.0
    segmenter = TorchSegmenter.from_checkpoint(
        Checkpoint.from_model(model, CITYSCAPES19, (1024, 512))
    )
    assert segmenter.spec.output_size == (2048, 1024)
    result = evaluate(segmenter, SegmentationDataset("cityscapes", tmp_path), num_workers=0)
    train = next(iter(expected.values()))
    labelled = train != 255
    assert result.matrix.mat.sum() == labelled.sum()
    # Everything predicted as car: IoU(car) = car pixels / all labelled pixels; 0 elsewhere.
    iou = result.matrix.iou()
    assert iou[CAR] == pytest.approx((train == CAR).sum() / labelled.sum())
    assert np.nansum(np.delete(iou, CAR)) == 0


def test_reported_subsets():
    assert reported_subsets(CITYSCAPES19, CITYSCAPES19) == [CITYSCAPES19, SYNTHIA16, SYNTHIA13]
    assert reported_subsets(SYNTHIA16, CITYSCAPES19) == [SYNTHIA16, SYNTHIA13]
    assert reported_subsets(CITYSCAPES19, CAMVID10) == [CAMVID10]


def test_eval_cli_writes_json_and_markdown(tmp_path, checkpoint_path, capsys):
    write_cityscapes(tmp_path / "cs", n=2)
    out = tmp_path / "reports"
    status = cli([str(checkpoint_path), "--dataset", "cityscapes", "--root", str(tmp_path / "cs"),
                  "--out", str(out), "--workers", "0"])  # fmt: skip
    assert status == 0
    report = json.loads((out / "cityscapes_val.json").read_text())
    assert report["images"] == 4
    assert set(report["miou"]) == {"cityscapes19", "synthia16", "synthia13"}
    assert report["per_class_iou"]["car"] > 0 and report["per_class_iou"]["road"] == 0
    assert "| **mIoU cityscapes19** |" in (out / "cityscapes_val.md").read_text()
    assert "| car |" in capsys.readouterr().out


def test_eval_on_camvid_reports_the_common_classes(tmp_path, checkpoint_path):
    write_camvid(tmp_path / "camvid")
    out = tmp_path / "reports"
    cli([str(checkpoint_path), "--dataset", "camvid", "--root", str(tmp_path / "camvid"),
         "--out", str(out), "--workers", "0"])  # fmt: skip
    report = json.loads((out / "camvid_test.json").read_text())
    assert list(report["miou"]) == ["camvid10"]


def test_eval_cli_errors_are_one_line(tmp_path, checkpoint_path, capsys):
    status = cli([str(checkpoint_path), "--dataset", "gta5", "--root", str(tmp_path / "none")])
    assert status == 2
    assert "genadapt-eval: error: gta5 folder not found" in capsys.readouterr().err


def test_eval_with_workers_matches_in_process(tmp_path):
    write_cityscapes(tmp_path, n=3, size=(128, 64))
    segmenter = TorchSegmenter.from_checkpoint(make_checkpoint(seed=5))
    a = evaluate(segmenter, SegmentationDataset("cityscapes", tmp_path), num_workers=0)
    b = evaluate(segmenter, SegmentationDataset("cityscapes", tmp_path), num_workers=2)
    assert torch.equal(a.matrix.mat, b.matrix.mat)


def test_retrieval_cli(tmp_path):
    from fake_datasets import write_gta5

    write_gta5(tmp_path / "gta5", n=6)
    write_cityscapes(tmp_path / "cs", split="train", n=3, labels=False)
    ckpt = save_checkpoint(make_checkpoint(seed=1), tmp_path / "run_a" / "checkpoint.pt")
    status = cli(["retrieval", str(ckpt), "--source-dataset", "gta5",
                  "--source-root", str(tmp_path / "gta5"),
                  "--target-dataset", "cityscapes", "--target-root", str(tmp_path / "cs"),
                  "--pool", "4", "--queries", "2",
                  "--k", "1", "4", "--out", str(tmp_path / "ret")])  # fmt: skip
    assert status == 0
    result = json.loads((tmp_path / "ret/retrieval.json").read_text())["models"]["run_a"]
    assert result["k"] == [1, 4] and 0 <= result["A_k"][1] <= 4
    assert (tmp_path / "ret/retrieval.png").stat().st_size > 1000


def test_table_of_means_over_seeds(tmp_path, capsys):
    specs = []
    for method, values in (("source-only", [10.0, 14.0]), ("adapted", [20.0])):
        for i, v in enumerate(values):
            path = tmp_path / f"{method}{i}.json"
            report = {"miou": {"cityscapes19": v}, "classes_scored": {"cityscapes19": 17}}
            path.write_text(json.dumps(report))
            specs.append(f"{method}:target={path}")
    assert cli(["table", *specs, "--out", str(tmp_path / "t.md")]) == 0
    table = capsys.readouterr().out
    assert "| source-only | 12.0 ± 2.8 (n=2) |" in table and "| adapted | 20.0 |" in table
    # Two of the 19 classes never occur in the built-in scenes: the header says what is averaged.
    assert table.startswith("| mIoU (cityscapes19, mean over 17 classes) |")
    assert (tmp_path / "t.md").read_text() == table
    assert cli(["table", "no-colon=x.json"]) == 2


def test_eval_scores_what_predict_deploys(tmp_path):
    """genadapt-eval's mIoU equals an independent scoring of genadapt-predict's label files: the
    two decode an image into the network's input one way (`imaging.network_input`)."""
    from genadapt.commands.predict import cli as predict

    from helpers import TINY_INPUT, trained_like_checkpoint

    # Images at twice the network size: predict reduces them while decoding (box, ×2), which
    # a plain bilinear resize does not match pixel for pixel.
    size = (2 * TINY_INPUT[0], 2 * TINY_INPUT[1])
    expected = write_cityscapes(tmp_path / "cs", n=3, size=size)
    ckpt = save_checkpoint(trained_like_checkpoint(seed=3), tmp_path / "model.pt")
    assert predict([str(ckpt), str(tmp_path / "cs/leftImg8bit/val"), "--out",
                    str(tmp_path / "pred")]) == 0  # fmt: skip
    assert cli([str(ckpt), "--dataset", "cityscapes", "--root", str(tmp_path / "cs"),
                "--out", str(tmp_path / "eval"), "--workers", "0"]) == 0  # fmt: skip
    counts = np.zeros((19, 19), np.int64)
    for name, truth in expected.items():
        city = name.split("_")[0]
        pred = np.asarray(Image.open(tmp_path / "pred" / city / f"{name[:-4]}_labels.png"))
        truth, pred = truth.astype(np.int64), pred.astype(np.int64)
        valid = truth < 19
        counts += np.bincount(truth[valid] * 19 + pred[valid], minlength=19 * 19).reshape(19, 19)
    diag = np.diag(counts)
    union = counts.sum(0) + counts.sum(1) - diag
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, diag / union, np.nan)
    report = json.loads((tmp_path / "eval/cityscapes_val.json").read_text())
    assert report["miou"]["cityscapes19"] == pytest.approx(100 * np.nanmean(iou), abs=0.006)
    for name, value in report["per_class_iou"].items():
        index = CITYSCAPES19.names.index(name)
        if value is not None:
            assert value == pytest.approx(100 * iou[index], abs=0.006)


def test_a_paired_table_gives_each_seeds_gain_and_the_interval(tmp_path, capsys):
    specs = []
    for method, values in (("source-only", [10.0, 12.0, 11.0]), ("adapted", [14.0, 15.0, 16.0])):
        for seed, v in enumerate(values, 1):
            path = tmp_path / f"{method}-{seed}.json"
            path.write_text(json.dumps({"miou": {"cityscapes19": v}}))
            specs.append(f"{method}:target={path}")
    assert cli(["table", *specs, "--pair", "source-only"]) == 0
    table = capsys.readouterr().out
    # Gains +4, +3, +5: mean +4.0, sd 1, t = 4·√3 with 2 degrees of freedom.
    assert "| adapted, target | +4.0, +3.0, +5.0 | +4.0 | [+1.5, +6.5] | 0.010 |" in table
    assert cli(["table", *specs[:-1], "--pair", "source-only"]) == 2  # 3 against 2: unpaired
