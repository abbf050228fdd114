"""The FastAPI app: a short composition of settings, model state, middleware and routes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import genadapt
from genadapt.runtime import Segmenter, load_segmenter
from genadapt.serve.budget import MemoryBudget
from genadapt.serve.docs import install_docs
from genadapt.serve.errors import install_error_handlers
from genadapt.serve.io_pool import IoPool
from genadapt.serve.metrics import ServiceMetrics
from genadapt.serve.middleware import HeadAsGet, OpsAuth, RequestMetrics, UploadGuard
from genadapt.serve.routes import router
from genadapt.serve.settings import ServeSettings
from genadapt.serve.state import ModelState

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(settings: ServeSettings, load: Callable[[], Segmenter] | None = None) -> FastAPI:
    """The service for `settings.model`; `load` replaces the model loader (tests)."""
    if load is None:

        def load() -> Segmenter:
            return load_segmenter(settings.model, settings.runtime_options())

    metrics = ServiceMetrics()
    state = ModelState(settings, load)
    io_pool = IoPool(settings.workers_io, settings.max_queue, settings.request_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start(metrics)
        yield
        # Uvicorn has stopped accepting and finished in-flight requests (SIGTERM): drain.
        state.stop()
        io_pool.shutdown()

    app = FastAPI(
        title="genadapt segmentation service",
        version=genadapt.__version__,
        description="Semantic segmentation with the adapted F+C network (Sankaranarayanan et "
        "al., CVPR 2018): upload a street image, get a label map at 2× the network size.",
        lifespan=lifespan,
        docs_url=None,  # replaced by install_docs: FastAPI's own load from a CDN
        redoc_url=None,
    )
    app.state.settings, app.state.model, app.state.metrics = settings, state, metrics
    app.state.io_pool = io_pool
    app.state.budget = MemoryBudget(settings.memory_budget_mb << 20)
    metrics.budget_used.set_function(lambda: app.state.budget.used)
    install_error_handlers(app)
    # Added innermost first: metrics see every answer, the guards' refusals included.
    app.add_middleware(
        UploadGuard, max_bytes=settings.max_upload_bytes, timeout_s=settings.body_timeout_s
    )
    if settings.api_key and settings.protect_ops:
        app.add_middleware(OpsAuth, api_key=settings.api_key)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(HeadAsGet)
    app.include_router(router)
    install_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
