"""mIoU from one confusion matrix over a whole set (never averaged per image)."""

from __future__ import annotations

import numpy as np
import torch

from genadapt.labels import LabelSpace


class ConfusionMatrix:
    """Counts (ground truth, prediction) pairs; rows are ground truth. Ignores gt outside 0..K-1."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, gt: torch.Tensor | np.ndarray, pred: torch.Tensor | np.ndarray) -> None:
        """Add a batch of label maps; one `bincount` over the valid pixels."""
        gt, pred = torch.as_tensor(gt).flatten().long(), torch.as_tensor(pred).flatten().long()
        if gt.shape != pred.shape:
            raise ValueError(f"ground truth has {gt.numel()} pixels, prediction {pred.numel()}")
        k = self.num_classes
        valid = (gt >= 0) & (gt < k)
        counts = torch.bincount(gt[valid] * k + pred[valid].clamp(0, k - 1), minlength=k * k)
        self.mat += counts.reshape(k, k).cpu()

    def iou(self) -> np.ndarray:
        """Per-class IoU = diag / (row + col − diag); NaN for a class absent from gt and pred."""
        mat = self.mat.double()
        diag = torch.diag(mat)
        union = mat.sum(0) + mat.sum(1) - diag
        iou = torch.where(union > 0, diag / union.clamp(min=1), torch.nan)
        return iou.numpy()

    def miou(self, indices: list[int] | None = None) -> float:
        """nanmean of the IoU over `indices` (all classes by default), in [0, 1]."""
        iou = self.iou() if indices is None else self.iou()[indices]
        return float(np.nanmean(iou)) if not np.all(np.isnan(iou)) else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.mat.sum().item()
        return float(torch.diag(self.mat).sum().item() / total) if total else float("nan")

    def merge(self, other: ConfusionMatrix) -> None:
        self.mat += other.mat


def summarize(
    matrix: ConfusionMatrix, head: LabelSpace, subsets: list[LabelSpace]
) -> dict[str, object]:
    """Per-class IoU and mIoU over each subset of the head's classes (in percent), and how many
    classes each mIoU averages: a class in neither the labels nor the predictions has no IoU
    (the built-in scenes have no train and no motorcycle, so their 19-class mIoU is over 17)."""
    iou = matrix.iou()
    return {
        "per_class_iou": {
            name: None if np.isnan(v) else round(100 * float(v), 2)
            for name, v in zip(head.names, iou, strict=True)
        },
        "miou": {s.name: round(100 * matrix.miou(head.subset_indices(s)), 2) for s in subsets},
        "classes_scored": {
            s.name: int(np.count_nonzero(~np.isnan(iou[head.subset_indices(s)]))) for s in subsets
        },
        "pixel_accuracy": round(100 * matrix.pixel_accuracy(), 2),
    }
