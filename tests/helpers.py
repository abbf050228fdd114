"""Test helpers: tiny models and checkpoints that build in milliseconds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import torch

from genadapt.checkpoint import Checkpoint
from genadapt.labels import CITYSCAPES19
from genadapt.model import ModelConfig, build_model

TINY = ModelConfig(num_classes=19, width=0.0625, padding="pad1")
TINY_INPUT = (64, 32)  # (W, H) the tiny checkpoints run at


def trained_like_checkpoint(size=(64, 32), padding="pad1", seed=0) -> Checkpoint:
    """Random, non-zero score layers: logits vary per pixel, so parity is a real comparison."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(num_classes=19, width=0.0625, padding=padding))
    with torch.no_grad():
        for score in (model.score_fr, model.score_pool4, model.score_pool3):
            score.weight.normal_(0, 0.5)
    return Checkpoint.from_model(model, CITYSCAPES19, size)


def make_checkpoint(winning_class: int | None = None, seed: int = 0) -> Checkpoint:
    """A tiny F+C; with `winning_class`, its score bias makes that class win at every pixel."""
    torch.manual_seed(seed)
    model = build_model(TINY)
    if winning_class is not None:
        with torch.no_grad():
            model.score_fr.bias[winning_class] = 5.0
    return Checkpoint.from_model(model, CITYSCAPES19, TINY_INPUT, step=7, metrics={"miou": 0.5})


ROOT = Path(__file__).resolve().parents[1]


def dockerfile_copies(text: str) -> list[str]:
    """The build-context paths of the Dockerfile's COPY lines (not those from other stages)."""
    paths = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            paths += [w for w in words[1:-1] if not w.startswith("--")]
    return paths


def build_wheel(tmp: Path) -> Path:
    """genadapt's wheel, built from exactly the files the Dockerfile copies (in `tmp`, so that
    the checkout gets no build/ folder)."""
    tmp.mkdir(parents=True, exist_ok=True)
    context = tmp / "context"
    for name in dockerfile_copies((ROOT / "Dockerfile").read_text()):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
               "-w", str(tmp / "dist"), str(context)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("genadapt-*.whl")
    return wheel
