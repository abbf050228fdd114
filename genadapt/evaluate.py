"""The paper's evaluation protocol (docs/method.md, Evaluation).

Predict on the image resized to the network size, upsample to the ground truth's resolution
(×2: 1024×512 → 2048×1024 for Cityscapes), accumulate one confusion matrix over the whole set,
then per-class IoU and mIoU over the reported classes. Single scale, no flip.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from genadapt.datasets import SegmentationDataset, Transform
from genadapt.fileio import atomic_write_bytes
from genadapt.labels import CITYSCAPES19, SYNTHIA13, SYNTHIA16, LabelSpace
from genadapt.metrics import ConfusionMatrix, summarize
from genadapt.provenance import footnote, provenance
from genadapt.runtime.base import Segmenter

log = logging.getLogger(__name__)


def reported_subsets(head: LabelSpace, dataset_classes: LabelSpace) -> list[LabelSpace]:
    """The standard class sets (19, 16, 13) that both the head and the dataset cover, plus the
    dataset's own classes (e.g. CamVid's 10) when they are not one of those."""
    common = set(head.cityscapes_ids) & set(dataset_classes.cityscapes_ids)
    subsets = [s for s in (CITYSCAPES19, SYNTHIA16, SYNTHIA13) if set(s.cityscapes_ids) <= common]
    if dataset_classes not in subsets and set(dataset_classes.cityscapes_ids) <= common:
        subsets.append(dataset_classes)
    return subsets


def list_collate(batch: list[dict]) -> list[dict]:
    """Keep samples apart: full-resolution labels may differ in size within a set."""
    return batch


@dataclass
class EvalResult:
    matrix: ConfusionMatrix
    head: LabelSpace
    subsets: list[LabelSpace]
    images: int
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = summarize(self.matrix, self.head, self.subsets)
        out["convention"] = (
            f"{self.head.num_classes}-way head; mIoU over N classes is the nanmean of the head's "
            "IoU over those N classes, from one confusion matrix over the whole set"
        )
        out["images"] = self.images
        out["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        return out


def evaluate(
    segmenter: Segmenter,
    dataset: SegmentationDataset,
    batch_size: int = 1,
    num_workers: int = 2,
    limit: int | None = None,
    indices: list[int] | None = None,
    progress: bool = True,
) -> EvalResult:
    """Run the protocol on `dataset` (or its first `limit` images, or `indices`); loading is
    parallel (workers decode and resize), inference batched."""
    dataset.transform = Transform(size=segmenter.spec.input_size, train=False)
    if indices is None and limit is not None:
        indices = list(range(min(limit, len(dataset))))
    data = dataset if indices is None else Subset(dataset, indices)
    loader = DataLoader(
        data, batch_size=batch_size, num_workers=num_workers, collate_fn=list_collate
    )
    matrix = ConfusionMatrix(segmenter.spec.label_space.num_classes)
    seconds = {"load": 0.0, "inference": 0.0, "scoring": 0.0}
    tick = time.perf_counter()
    for batch in tqdm(loader, desc="evaluate", unit="batch", disable=not progress):
        seconds["load"] += time.perf_counter() - tick
        for group in _group_by_label_size(batch):
            start = time.perf_counter()
            images = [s["image"].permute(1, 2, 0).numpy() for s in group]
            height, width = group[0]["label"].shape
            pred = segmenter.segment(images, output_size=(width, height))
            scored = time.perf_counter()
            seconds["inference"] += scored - start
            matrix.update(torch.stack([s["label"] for s in group]), torch.from_numpy(pred))
            seconds["scoring"] += time.perf_counter() - scored
        tick = time.perf_counter()
    subsets = reported_subsets(segmenter.spec.label_space, dataset.kind.classes)
    return EvalResult(matrix, segmenter.spec.label_space, subsets, len(data), seconds)


def _group_by_label_size(batch: list[dict]) -> list[list[dict]]:
    groups: dict[tuple[int, int], list[dict]] = {}
    for sample in batch:
        groups.setdefault(tuple(sample["label"].shape), []).append(sample)
    return list(groups.values())


def markdown_table(results: dict[str, dict]) -> str:
    """Rows: per-class IoU and the mIoUs; one column per evaluated model or dataset."""
    columns = list(results)
    first = results[columns[0]]
    rows = [f"| class | {' | '.join(columns)} |", "|---|" + "---|" * len(columns)]
    for name in first["per_class_iou"]:
        cells = [_fmt(results[c]["per_class_iou"].get(name)) for c in columns]
        rows.append(f"| {name} | {' | '.join(cells)} |")
    for subset in first["miou"]:
        cells = [_fmt(results[c]["miou"].get(subset)) for c in columns]
        rows.append(f"| **mIoU {subset}** | {' | '.join(cells)} |")
    return "\n".join(rows) + "\n"


def _fmt(value: float | None) -> str:
    return "–" if value is None or np.isnan(value) else f"{value:.1f}"


def write_report(out_dir: Path, name: str, result: dict) -> tuple[Path, Path]:
    """`name`.json and `name`.md in `out_dir`, each saying which commit, machine and command
    made it."""
    result = {**result, "provenance": provenance()}
    json_path = atomic_write_bytes(out_dir / f"{name}.json", json.dumps(result, indent=2).encode())
    md = markdown_table({name: result}) + f"\n{result['convention']}.\n\n"
    md += footnote(result["provenance"]) + "\n"
    md_path = atomic_write_bytes(out_dir / f"{name}.md", md.encode())
    return json_path, md_path
