import math

import numpy as np
import torch

from genadapt.labels import CITYSCAPES19, SYNTHIA13, SYNTHIA16
from genadapt.metrics import ConfusionMatrix, summarize


def test_perfect_prediction():
    gt = torch.tensor([[0, 1], [2, 2]])
    m = ConfusionMatrix(3)
    m.update(gt, gt)
    np.testing.assert_allclose(m.iou(), [1, 1, 1])
    assert m.miou() == 1.0 and m.pixel_accuracy() == 1.0


def test_all_wrong():
    m = ConfusionMatrix(3)
    m.update(torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0]))
    np.testing.assert_allclose(m.iou(), [0, 0, 0])
    assert m.miou() == 0.0


def test_class_absent_from_both_is_excluded_and_ignore_is_skipped():
    m = ConfusionMatrix(4)
    gt = torch.tensor([0, 0, 1, 1, 255, 255])
    pred = torch.tensor([0, 1, 1, 1, 3, 0])  # predictions on ignored pixels do not count
    m.update(gt, pred)
    # class 0: tp 1, fn 1 → 1/2; class 1: tp 2, fp 1 → 2/3; classes 2 and 3 absent from gt and pred.
    iou = m.iou()
    assert iou[0] == 0.5 and math.isclose(iou[1], 2 / 3)
    assert np.isnan(iou[2]) and np.isnan(iou[3])
    assert math.isclose(m.miou(), (0.5 + 2 / 3) / 2)
    assert m.mat.sum() == 4


def test_one_matrix_over_the_set_not_a_mean_per_image():
    m = ConfusionMatrix(2)
    m.update(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 0, 0]))  # image 1
    m.update(torch.tensor([1]), torch.tensor([1]))  # image 2
    # Set-level: class 0 tp 3 / (3 + 1) ; class 1 tp 1 / (2 + 0)
    np.testing.assert_allclose(m.iou(), [0.75, 0.5])


def test_subset_miou_of_a_19_way_head():
    m = ConfusionMatrix(19)
    gt = torch.arange(19)
    pred = gt.clone()
    pred[9] = 14  # terrain → truck: hurts mIoU-19 but not mIoU-16, which has neither
    m.update(gt, pred)
    summary = summarize(m, CITYSCAPES19, [CITYSCAPES19, SYNTHIA16, SYNTHIA13])
    assert summary["miou"]["synthia16"] == 100.0
    assert summary["miou"]["synthia13"] == 100.0
    assert summary["miou"]["cityscapes19"] == round(100 * (17 + 0.5) / 19, 2)
    assert summary["per_class_iou"]["terrain"] == 0.0


def test_the_summary_counts_the_classes_each_miou_averages():
    m = ConfusionMatrix(19)
    gt = torch.tensor([i for i in range(19) if i not in (16, 17)])  # no train, no motorcycle
    m.update(gt, gt.clone())
    summary = summarize(m, CITYSCAPES19, [CITYSCAPES19, SYNTHIA16])
    assert summary["classes_scored"] == {"cityscapes19": 17, "synthia16": 15}
    assert summary["miou"]["cityscapes19"] == 100.0  # a mean over the 17, not the 19
