"""`genadapt-data scenes`: the built-in synthetic → real shift, written in the real layouts.

    OUT/source/   GTA5 layout (images/, labels/ with Cityscapes labelIds): the labeled source
    OUT/target/   Cityscapes layout, train (labels present but unused in training) and val
    OUT/unseen/   Cityscapes layout, val only: a look never used in training
    OUT/tune/     Cityscapes layout, train and val (optional): a fourth look for choosing
                  settings, so that the target and unseen looks are never used for any choice

Each image is a pure function of (seed, domain, split, index), generated in parallel processes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from genadapt.errors import GenadaptError
from genadapt.fileio import atomic_write_bytes
from genadapt.labels import CITYSCAPES_LABEL_IDS
from genadapt.scenes.layout import LayoutStats, generate_layout
from genadapt.scenes.render import STYLES, render

log = logging.getLogger(__name__)

# Cameras and streets differ a little between domains, as GTA5's and Cityscapes' do.
DOMAIN_LAYOUTS: dict[str, LayoutStats] = {
    "source": LayoutStats(horizon=(0.38, 0.48), cars=(1, 5), people=(1, 5)),
    "target": LayoutStats(horizon=(0.44, 0.54), cars=(2, 6), people=(1, 4), riders=0.35),
    "unseen": LayoutStats(horizon=(0.40, 0.52), cars=(1, 4), people=(2, 6), big_vehicles=0.3),
    "tune": LayoutStats(horizon=(0.42, 0.52), cars=(2, 5), people=(1, 5), riders=0.4),
}
DOMAIN_IDS = {"source": 0, "target": 1, "unseen": 2, "tune": 3}
SPLIT_IDS = {"all": 0, "train": 1, "val": 2}
CITY = {"target": "synthtown", "unseen": "dusktown", "tune": "noonville"}
MAX_SIZE = (2048, 1024)
_LABEL_IDS = np.zeros(256, dtype=np.uint8)
_LABEL_IDS[: len(CITYSCAPES_LABEL_IDS)] = CITYSCAPES_LABEL_IDS


@dataclass(frozen=True)
class SceneSpec:
    """One image to generate."""

    domain: str
    split: str
    index: int
    size: tuple[int, int]
    seed: int


def make_scene(spec: SceneSpec) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 (H, W, 3), train ids (H, W)) of one scene, deterministic in its spec."""
    rng = np.random.default_rng(
        [spec.seed, DOMAIN_IDS[spec.domain], SPLIT_IDS[spec.split], spec.index]
    )
    width, height = spec.size
    labels, instances, horizon = generate_layout(rng, width, height, DOMAIN_LAYOUTS[spec.domain])
    return render(labels, instances, horizon, STYLES[spec.domain], rng), labels


def output_paths(root: Path, spec: SceneSpec) -> tuple[Path, Path]:
    """Where an image and its labelIds go, in the GTA5 or Cityscapes layout."""
    if spec.domain == "source":
        name = f"{spec.index:05d}.png"
        return root / "source" / "images" / name, root / "source" / "labels" / name
    city = CITY[spec.domain]
    stem = f"{city}_{spec.index:06d}_000019"
    base = root / spec.domain
    return (
        base / "leftImg8bit" / spec.split / city / f"{stem}_leftImg8bit.png",
        base / "gtFine" / spec.split / city / f"{stem}_gtFine_labelIds.png",
    )


def _write(task: tuple[Path, SceneSpec]) -> None:
    root, spec = task
    rgb, labels = make_scene(spec)
    image_path, label_path = output_paths(root, spec)
    for path, array in ((image_path, rgb), (label_path, _LABEL_IDS[labels])):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path, compress_level=1)


def plan(counts: dict[tuple[str, str], int], size: tuple[int, int], seed: int) -> list[SceneSpec]:
    return [
        SceneSpec(domain, split, i, size, seed)
        for (domain, split), n in counts.items()
        for i in range(n)
    ]


def generate_scenes(
    out: Path,
    size: tuple[int, int] = (512, 256),
    source: int = 500,
    target_train: int = 500,
    target_val: int = 100,
    unseen: int = 100,
    seed: int = 0,
    workers: int = 2,
    tune_train: int = 0,
    tune_val: int = 0,
) -> dict:
    """Write the domains under `out` (the tuning look only when asked for); returns the
    manifest (also saved as JSON)."""
    width, height = size
    if not (32 <= width <= MAX_SIZE[0] and 32 <= height <= MAX_SIZE[1]):
        raise GenadaptError(f"size must be between 32x32 and 2048x1024, got {width}x{height}")
    counts = {
        ("source", "all"): source,
        ("target", "train"): target_train,
        ("target", "val"): target_val,
        ("unseen", "val"): unseen,
        ("tune", "train"): tune_train,
        ("tune", "val"): tune_val,
    }
    counts = {key: n for key, n in counts.items() if n or key[0] != "tune"}
    specs = plan(counts, size, seed)
    tasks = [(Path(out), spec) for spec in specs]
    with Pool(max(1, workers)) as pool:
        for _ in tqdm(
            pool.imap_unordered(_write, tasks, chunksize=8),
            total=len(tasks),
            desc="scenes",
            unit="img",
        ):
            pass
    manifest = {
        "size": list(size),
        "seed": seed,
        "counts": {f"{d}/{s}": n for (d, s), n in counts.items()},
        "layouts": {"source": "gta5", "target": "cityscapes", "unseen": "cityscapes"}
        | ({"tune": "cityscapes"} if tune_train or tune_val else {}),
    }
    atomic_write_bytes(Path(out) / "manifest.json", json.dumps(manifest, indent=2).encode())
    log.info("wrote %d scenes to %s", len(specs), out)
    return manifest
