"""The parity gate: every exported artifact against PyTorch fp32 on the same inputs.

Inputs are real-looking street scenes rendered by the built-in generator (with labels, so an
mIoU can be computed without any dataset) and, when given, images of an evaluation folder.
fp32 artifacts must match elementwise (logits) and label for label; fp16 ones are judged by
label agreement and mIoU delta only, since fp16 logits legitimately differ in the last bits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from genadapt.datasets import SegmentationDataset
from genadapt.errors import GenadaptError
from genadapt.evaluate import evaluate
from genadapt.imaging import normalize_batch, resize_rgb
from genadapt.metrics import ConfusionMatrix
from genadapt.runtime import Segmenter, TorchSegmenter
from genadapt.scenes.generate import SceneSpec, make_scene
from genadapt.spec import ModelSpec, Precision

log = logging.getLogger(__name__)

# precision → (max |Δlogits| relative to max |logits| or None, min label agreement, max |ΔmIoU|)
THRESHOLDS: dict[str, tuple[float | None, float, float]] = {
    "fp32": (1e-4, 0.999, 0.1),
    "tf32": (None, 0.995, 0.3),
    "fp16": (None, 0.995, 0.5),
    # INT8 moves argmax ties: judged by agreement (issue target ≥ 98%) and ≤ 1 mIoU point.
    "int8": (None, 0.98, 1.0),
}


class ParityError(GenadaptError):
    """An artifact does not compute what the checkpoint computes."""


@dataclass
class ParityResult:
    max_abs_logit_diff: float | None
    logit_scale: float | None
    label_agreement: float
    miou_reference: float
    miou_artifact: float
    miou_delta: float
    eval_miou_delta: float | None
    images: int
    precision: Precision
    passed: bool
    reasons: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def scene_inputs(spec: ModelSpec, count: int, seed: int = 1234) -> tuple[np.ndarray, list]:
    """uint8 (N, H, W, 3) target-look scenes at the network size, and their labels at the
    output size."""
    images, labels = [], []
    for i in range(count):
        rgb, train_ids = make_scene(SceneSpec("target", "val", i, spec.output_size, seed))
        images.append(resize_rgb(rgb, spec.input_size))
        labels.append(train_ids)
    return np.stack(images), labels


def check_parity(
    reference: TorchSegmenter,
    artifact: Segmenter,
    precision: Precision = "fp32",
    images: int = 8,
    logits_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    eval_dataset: SegmentationDataset | None = None,
    eval_limit: int | None = None,
) -> ParityResult:
    """Compare `artifact` with `reference`, the checkpoint's F+C in PyTorch fp32 on the CPU.

    `logits_fn`, for a logits-flavour artifact, maps normalized float NCHW to its logits, so that
    the elementwise difference is measured too.
    """
    spec = reference.spec
    batch, gt = scene_inputs(spec, images)
    ref_labels = np.concatenate([reference.run(b[None], spec.output_size) for b in batch])
    art_labels = np.concatenate([artifact.run(b[None], spec.output_size) for b in batch])
    agreement = float((ref_labels == art_labels).mean())
    k = spec.label_space.num_classes
    lut = spec.label_space.from_cityscapes_train_ids()
    miou = {}
    for name, pred in (("reference", ref_labels), ("artifact", art_labels)):
        matrix = ConfusionMatrix(k)
        matrix.update(torch.from_numpy(lut[np.stack(gt)]), torch.from_numpy(pred))
        miou[name] = 100 * matrix.miou()
    max_diff = scale = None
    if logits_fn is not None:
        x = normalize_batch(batch, spec.normalization)
        with torch.inference_mode():
            ref_logits = reference.model(torch.from_numpy(x)).numpy()
        art_logits = logits_fn(x)
        max_diff = float(np.abs(ref_logits - art_logits).max())
        scale = float(np.abs(ref_logits).max())
    eval_delta = None
    if eval_dataset is not None:
        ours = evaluate(reference, eval_dataset, num_workers=0, limit=eval_limit, progress=False)
        theirs = evaluate(artifact, eval_dataset, num_workers=0, limit=eval_limit, progress=False)
        eval_delta = 100 * abs(ours.matrix.miou() - theirs.matrix.miou())
    return _judge(max_diff, scale, agreement, miou, eval_delta, len(batch), precision)


def _judge(max_diff, scale, agreement, miou, eval_delta, n, precision) -> ParityResult:
    max_rel, min_agreement, max_miou_delta = THRESHOLDS[precision]
    reasons = []
    if max_rel is not None and max_diff is not None and max_diff > max_rel * max(scale, 1.0):
        reasons.append(f"max |Δlogits| {max_diff:.3g} exceeds {max_rel:g} × {max(scale, 1.0):.3g}")
    if agreement < min_agreement:
        reasons.append(
            f"labels agree on {100 * agreement:.3f}% of pixels (< {100 * min_agreement}%)"
        )
    delta = abs(miou["reference"] - miou["artifact"])
    for what, value in (("scene", delta), ("evaluation-set", eval_delta)):
        if value is not None and value > max_miou_delta:
            reasons.append(f"{what} mIoU differs by {value:.2f} points (> {max_miou_delta})")
    return ParityResult(
        max_abs_logit_diff=max_diff,
        logit_scale=scale,
        label_agreement=agreement,
        miou_reference=miou["reference"],
        miou_artifact=miou["artifact"],
        miou_delta=delta,
        eval_miou_delta=eval_delta,
        images=n,
        precision=precision,
        passed=not reasons,
        reasons=reasons,
    )
