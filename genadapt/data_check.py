"""`genadapt-data check KIND ROOT`: is this folder the dataset it should be?

Counts images and labels and finds every defect a loader would otherwise meet mid-run: images
without labels, labels without images, image/label size mismatches, unreadable files, and label
values that are not ids of the dataset. Files are read in parallel threads (decoding releases
the GIL).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genadapt.datasets import DatasetKind, list_pairs
from genadapt.errors import GenadaptError
from genadapt.imaging import read_image

MAX_LISTED = 10  # defects listed per category in the text report; the JSON has them all


@dataclass
class CheckReport:
    kind: str
    root: str
    split: str
    images: int = 0
    labels: int = 0
    missing_labels: list[str] = field(default_factory=list)
    orphan_labels: list[str] = field(default_factory=list)
    size_mismatches: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    invalid_label_values: list[str] = field(default_factory=list)
    class_pixels: dict[str, int] = field(default_factory=dict)

    @property
    def defects(self) -> int:
        return sum(len(v) for v in self._defect_lists().values())

    def _defect_lists(self) -> dict[str, list[str]]:
        return {
            "images without a label": self.missing_labels,
            "labels without an image": self.orphan_labels,
            "image/label size mismatches": self.size_mismatches,
            "unreadable files": self.unreadable,
            "labels with values outside the dataset's ids": self.invalid_label_values,
        }

    def to_text(self) -> str:
        lines = [
            f"{self.kind} at {self.root} (split {self.split}): "
            f"{self.images} images, {self.labels} labels",
        ]
        for title, items in self._defect_lists().items():
            lines.append(f"  {title}: {len(items)}")
            lines += [f"    {item}" for item in items[:MAX_LISTED]]
            if len(items) > MAX_LISTED:
                lines.append(f"    … and {len(items) - MAX_LISTED} more")
        present = [name for name, n in self.class_pixels.items() if n > 0]
        lines.append(f"  classes present: {len(present)} ({', '.join(present)})")
        lines.append("  OK" if self.defects == 0 else f"  {self.defects} defect(s) found")
        return "\n".join(lines)


def _check_pair(kind: DatasetKind, image: Path, label: Path) -> tuple[str, str | None, np.ndarray]:
    """('ok' | defect category, message, per-raw-id pixel counts)."""
    counts = np.zeros(kind.max_raw_id + 1, dtype=np.int64)
    try:
        rgb = read_image(str(image))
    except (OSError, GenadaptError) as exc:
        return "unreadable", f"{image}: {exc}", counts
    try:
        raw = kind.read_label(label)
    except (OSError, ValueError) as exc:
        return "unreadable", f"{label}: {exc}", counts
    if raw.shape != rgb.shape[:2]:
        (ih, iw), (lh, lw) = rgb.shape[:2], raw.shape
        return "size", f"{image.name}: image {iw}x{ih}, label {lw}x{lh}", counts
    bad = (raw < 0) | (raw > kind.max_raw_id)
    if bad.any():
        values = np.unique(raw[bad])[:5].tolist()
        return "values", f"{label}: values {values} are not {kind.name} ids", counts
    counts += np.bincount(raw.ravel(), minlength=kind.max_raw_id + 1)
    return "ok", None, counts


def check_dataset(
    kind: DatasetKind, root: Path, split: str | None = None, workers: int = 4
) -> CheckReport:
    split = split or kind.default_split
    pairs = list_pairs(kind, root, split)
    label_files = kind.labels(Path(root), split)
    report = CheckReport(kind.name, str(root), split, images=len(pairs), labels=len(label_files))
    expected_labels = {label for _, label in pairs}
    report.orphan_labels = [str(p) for p in label_files if p not in expected_labels]
    present = [(image, label) for image, label in pairs if label.is_file()]
    report.missing_labels = [str(image) for image, label in pairs if not label.is_file()]

    raw_counts = np.zeros(kind.max_raw_id + 1, dtype=np.int64)
    categories = {
        "unreadable": report.unreadable,
        "size": report.size_mismatches,
        "values": report.invalid_label_values,
    }
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda pair: _check_pair(kind, *pair), present)
        for status, message, counts in tqdm(results, total=len(present), desc="check"):
            if status != "ok":
                categories[status].append(message)
            raw_counts += counts
    # Pixel counts per class of the dataset's own label space.
    lookup = kind.lookup(kind.classes)[: kind.max_raw_id + 1]
    for class_id, name in enumerate(kind.classes.names):
        report.class_pixels[name] = int(raw_counts[lookup == class_id].sum())
    return report
