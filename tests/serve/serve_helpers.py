"""Service test helpers: a tiny varied checkpoint, readiness polling, a slow segmenter."""

from __future__ import annotations

import threading
import time

import numpy as np
import torch

from genadapt.checkpoint import Checkpoint
from genadapt.labels import CITYSCAPES19
from genadapt.model import ModelConfig, build_model
from genadapt.runtime import TorchSegmenter


def varied_checkpoint() -> Checkpoint:
    """A tiny F+C whose labels vary across the image (so formats and sizes can be checked)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=19, width=0.0625))
    with torch.no_grad():
        for score in (model.score_fr, model.score_pool4, model.score_pool3):
            score.weight.normal_(0, 0.5)
    return Checkpoint.from_model(model, CITYSCAPES19, (64, 32))


def wait_ready(client, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.time() < deadline, client.get("/readyz").json()
        time.sleep(0.02)


class SlowSegmenter(TorchSegmenter):
    """Waits on a gate before every batch: lets a test fill the queue or time a request out."""

    def __init__(self, base: TorchSegmenter, gate: threading.Event, delay: float = 0.0):
        super().__init__(base.model, base.spec)
        self.gate, self.delay, self.warmed = gate, delay, False

    def run(self, batch: np.ndarray, output_size):
        if self.warmed:
            self.gate.wait(30)
            time.sleep(self.delay)
        self.warmed = True
        return super().run(batch, output_size)
