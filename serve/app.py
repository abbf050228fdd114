"""The FastAPI app: a short composition of settings, model state, middleware and routes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

import genadapt
from genadapt.runtime import Segmenter, load_segmenter
from genadapt.serve.errors import BodyLimit, install_error_handlers
from genadapt.serve.metrics import ServiceMetrics
from genadapt.serve.routes import router
from genadapt.serve.settings import ServeSettings
from genadapt.serve.state import ModelState

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
KNOWN_PATHS = {"/v1/segment", "/v1/model", "/healthz", "/readyz", "/metrics", "/"}


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
