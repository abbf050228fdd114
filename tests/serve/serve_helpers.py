"""Service test helpers: a tiny varied checkpoint, readiness polling, a slow segmenter, and a
real genadapt-serve process on a free loopback port."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import torch
from PIL import Image

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo(seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def start(model_path, **env) -> tuple[str, subprocess.Popen]:
    port = free_port()
    settings = {f"GENADAPT_{k.upper()}": str(v) for k, v in env.items()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "genadapt.serve.cli", str(model_path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **settings},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return url, proc
        except httpx.TransportError:
            pass
        assert time.time() < deadline, "server did not become ready"
        time.sleep(0.1)


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out
