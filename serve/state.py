"""The model's state in the service: loaded and warmed up in the background, then its worker."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genadapt.errors import GenadaptError
from genadapt.runtime import Segmenter
from genadapt.serve.metrics import ServiceMetrics
from genadapt.serve.settings import ServeSettings
from genadapt.serve.worker import InferenceWorker
from genadapt.sidecar import file_sha256

log = logging.getLogger(__name__)


class ModelState:
    """The model, loaded and warmed up in the background so that /healthz answers at once and
    /readyz says 503 until a warm-up inference has passed."""

    def __init__(self, settings: ServeSettings, load: Callable[[], Segmenter]) -> None:
        self.settings, self.load = settings, load
        self.segmenter: Segmenter | None = None
        self.worker: InferenceWorker | None = None
        self.error: str | None = None
        self.model_sha256: str | None = None
        self.ready = threading.Event()

    def start(self, metrics: ServiceMetrics) -> None:
        threading.Thread(target=self._load, args=(metrics,), daemon=True, name="model-load").start()

    def _load(self, metrics: ServiceMetrics) -> None:
        try:
            segmenter = self.load()
            segmenter.set_output_scale(self.settings.output_scale)
            self.model_sha256 = _sha256_of_what_runs(self.settings.model, segmenter)
            width, height = segmenter.spec.input_size
            for batch in segmenter.warmup_batch_sizes(self.settings.max_batch):
                image = np.zeros((batch, height, width, 3), np.uint8)
                segmenter.run(image, segmenter.spec.output_size)
        except GenadaptError as exc:  # a clear, expected refusal: one line is enough
            log.error("model failed to load: %s", exc)
            self.error = f"{type(exc).__name__}: {exc}"
            return
        except Exception as exc:  # reported by /readyz and every request, never swallowed
            log.exception("model failed to load")
            self.error = f"{type(exc).__name__}: {exc}"
            return
        s = self.settings
        self.segmenter = segmenter
        self.worker = InferenceWorker(segmenter, s.max_batch, s.batch_delay_ms / 1000, s.max_queue)
        metrics.ready.set(1)
        self.ready.set()
        log.info("model ready: %s", segmenter.describe())

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()


def _sha256_of_what_runs(model: str, segmenter: Segmenter) -> str | None:
    """The hash of the file that runs: in an export folder, the artifact chosen there. An
    exported file was already hashed and verified at load: not read a second time."""
    if segmenter.sha256:
        return segmenter.sha256
    if not model:
        return None
    path = Path(model)
    if path.is_dir() and segmenter.file:
        path = path / segmenter.file
    return file_sha256(path)
