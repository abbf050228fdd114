"""Test helpers: tiny models and checkpoints that build in milliseconds."""

from __future__ import annotations

import torch

from genadapt.checkpoint import Checkpoint
from genadapt.labels import CITYSCAPES19
from genadapt.model import ModelConfig, build_model

TINY = ModelConfig(num_classes=19, width=0.0625, padding="pad1")
TINY_INPUT = (64, 32)  # (W, H) the tiny checkpoints run at


def make_checkpoint(winning_class: int | None = None, seed: int = 0) -> Checkpoint:
    """A tiny F+C; with `winning_class`, its score bias makes that class win at every pixel."""
    torch.manual_seed(seed)
    model = build_model(TINY)
    if winning_class is not None:
        with torch.no_grad():
            model.score_fr.bias[winning_class] = 5.0
    return Checkpoint.from_model(model, CITYSCAPES19, TINY_INPUT, step=7, metrics={"miou": 0.5})
