"""The FastAPI app: a short composition of settings, model state, middleware and routes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

import genadapt
from genadapt.errors import GenadaptError
from genadapt.runtime import Segmenter, load_segmenter
from genadapt.serve.errors import BodyLimit, install_error_handlers
from genadapt.serve.metrics import ServiceMetrics
from genadapt.serve.routes import router
from genadapt.serve.settings import ServeSettings
from genadapt.serve.worker import InferenceWorker
from genadapt.sidecar import file_sha256

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
KNOWN_PATHS = {"/v1/segment", "/v1/model", "/healthz", "/readyz", "/metrics", "/"}


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
            self.model_sha256 = file_sha256(self.settings.model) if self.settings.model else None
            width, height = segmenter.input_size
            for batch in segmenter.warmup_batch_sizes(self.settings.max_batch):
                image = np.zeros((batch, height, width, 3), np.uint8)
                segmenter.run(image, segmenter.output_size)
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


def create_app(settings: ServeSettings, load: Callable[[], Segmenter] | None = None) -> FastAPI:
    """The service for `settings.model`; `load` replaces the model loader (tests)."""
    if load is None:

        def load() -> Segmenter:
            return load_segmenter(
                settings.model,
                settings.backend,
                settings.device,
                settings.upsample,
                max_batch=settings.max_batch,
                fp16=settings.precision == "fp16",
                cache_dir=settings.cache_dir,
            )

    metrics = ServiceMetrics()
    state = ModelState(settings, load)
    io_pool = ThreadPoolExecutor(settings.workers_io, thread_name_prefix="genadapt-io")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start(metrics)
        yield
        # Uvicorn has stopped accepting and finished in-flight requests (SIGTERM): drain.
        state.stop()
        io_pool.shutdown(wait=True)

    app = FastAPI(
        title="genadapt segmentation service",
        version=genadapt.__version__,
        description="Semantic segmentation with the adapted F+C network (Sankaranarayanan et "
        "al., CVPR 2018): upload a street image, get a label map at 2× the network size.",
        lifespan=lifespan,
    )
    app.state.settings, app.state.model, app.state.metrics = settings, state, metrics
    app.state.io_pool = io_pool
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        path = request.url.path if request.url.path in KNOWN_PATHS else "other"
        metrics.requests.labels(path=path, status=str(response.status_code)).inc()
        if path == "/v1/segment":
            metrics.stages["request"].observe(time.perf_counter() - start)
        return response

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
