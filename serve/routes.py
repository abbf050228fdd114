"""Endpoints: /v1/segment, /v1/model, /healthz, /readyz, /metrics and the web page at /."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

import genadapt
from genadapt.imaging import ImageDecodeError, ImageTooLargeError
from genadapt.serve.budget import BudgetTimeoutError, MemoryBudget, OverBudgetError
from genadapt.serve.errors import BAD_BODY, REFUSED_BY_SERVER, ServiceError
from genadapt.serve.io_pool import IoPool, PoolBusyError, PoolStartTimeoutError
from genadapt.serve.metrics import ServiceMetrics
from genadapt.serve.openapi import (
    SEGMENT_BODY,
    SEGMENT_RESPONSES,
    FormatParam,
    OverlayParam,
    PhotoParam,
    SizeParam,
)
from genadapt.serve.outputs import FORMATS, Decoded
from genadapt.serve.pipeline import SegmentPipeline
from genadapt.serve.settings import ServeSettings
from genadapt.serve.state import ModelState
from genadapt.serve.worker import Job, QueueFullError

log = logging.getLogger(__name__)
router = APIRouter()
RAW_TYPES = ("image/", "application/octet-stream")
PAGE = Path(__file__).parent / "static" / "index.html"


def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


Settings = Annotated[ServeSettings, Depends(get_settings)]
Metrics = Annotated[ServiceMetrics, Depends(get_metrics)]


def require_api_key(request: Request, settings: Settings) -> None:
    expected = settings.api_key
    if not expected:
        return
    given = request.headers.get("x-api-key", "")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = given or auth[7:].strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ServiceError(
            401,
            "unauthorized",
            "missing or wrong API key (X-API-Key header)",
            {"WWW-Authenticate": "Bearer"},
        )


ApiKey = Annotated[None, Depends(require_api_key)]


def ready_model(request: Request) -> ModelState:
    state: ModelState = request.app.state.model
    if state.error:
        raise ServiceError(503, "model_failed", f"the model failed to load: {state.error}")
    if not state.ready.is_set():
        raise ServiceError(503, "loading", "the model is loading", {"Retry-After": "5"})
    return state


@router.get("/healthz", tags=["ops"])
async def healthz() -> dict:
    """The process is alive (never touches the model)."""
    return {"status": "ok"}


Ready = Annotated[ModelState, Depends(ready_model)]


@router.get("/readyz", tags=["ops"], responses={503: {"content": {"application/json": {}}}})
async def readyz(_: Ready) -> dict:
    """200 once the model is loaded and a warm-up inference passed; 503 before (or if it failed)."""
    return {"status": "ready"}


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(request: Request, m: Metrics) -> Response:
    """Prometheus metrics: requests by status; queue, decode, inference, encode, total time."""
    worker = request.app.state.model.worker
    m.queue_depth.set(worker.depth() if worker else 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def page(settings: Settings) -> HTMLResponse:
    """The page, with this service's own limits written into it."""
    return HTMLResponse(render_page(settings.max_upload_bytes, settings.max_pixels))


@lru_cache(maxsize=4)
def render_page(max_upload_bytes: int, max_pixels: int) -> str:
    limits = {
        "{{max_upload_mb}}": f"{round(max_upload_bytes / 2**20, 1):g}",
        "{{max_megapixels}}": f"{round(max_pixels / 1e6, 1):g}",
    }
    text = PAGE.read_text(encoding="utf-8")
    for placeholder, value in limits.items():
        text = text.replace(placeholder, value)
    return text


@router.get("/v1/model", tags=["segmentation"])
async def model_info(state: Ready, settings: Settings, _: ApiKey) -> dict:
    """Classes and palette, input and output sizes, backend, precision, model hash, versions."""
    seg = state.segmenter
    space = seg.spec.label_space
    return {
        "classes": [
            {"id": i, "name": n, "color": list(c)}
            for i, (n, c) in enumerate(zip(space.names, space.palette, strict=True))
        ],
        **seg.describe(),
        "model": settings.model,
        "model_sha256": state.model_sha256,
        "versions": {"genadapt": genadapt.__version__},
        "max_batch": settings.max_batch,
    }


@router.post(
    "/v1/segment",
    tags=["segmentation"],
    responses=SEGMENT_RESPONSES,
    openapi_extra=SEGMENT_BODY,
    response_class=Response,
)
async def segment(
    request: Request,
    state: Ready,
    settings: Settings,
    metrics: Metrics,
    _: ApiKey,
    format: FormatParam = "png",
    size: SizeParam = "native",
    overlay: OverlayParam = False,
    photo: PhotoParam = False,
) -> Response:
    """Segment one image, sent as a multipart upload (`file`) or as the raw body."""
    started = time.perf_counter()
    data = await _read_image_bytes(request)
    pool, budget = request.app.state.io_pool, request.app.state.budget
    pipeline = SegmentPipeline(
        state.segmenter.spec,
        format,
        size,
        overlay,
        photo,
        settings.max_pixels,
        settings.max_output_pixels,
        settings.png_compression,
    )
    waits: list[float] = []  # time spent waiting for an image thread, reported apart
    t0 = time.perf_counter()
    cost = await _in_pool(pool, pipeline.decode_cost, data, waits=waits)
    async with _holding(budget, cost, settings):
        decoded = await _decode(state, pool, pipeline, data, waits)
    decode_s = time.perf_counter() - t0 - sum(waits)
    job = await _infer(state, settings, decoded)
    t1, decode_waits = time.perf_counter(), sum(waits)
    held = pipeline.encode_cost(decoded)
    await _acquire(budget, held, settings)
    try:
        labels = job.future.result()
        body = await _in_pool(pool, pipeline.encode, decoded, labels, waits=waits)
    except BaseException:
        await budget.release(held)
        raise
    timings = {
        "decode": decode_s,
        "io_wait": sum(waits),
        "queue": job.queue_wait,
        "inference": job.inference,
        "encode": time.perf_counter() - t1 - (sum(waits) - decode_waits),
        "total": time.perf_counter() - started,
    }
    _observe(metrics, timings, job.batch_size)
    headers = {
        "Server-Timing": ", ".join(f"{k};dur={1000 * v:.2f}" for k, v in timings.items()),
        "X-Batch-Size": str(job.batch_size),
    }
    if format == "json":
        body["timing_ms"] = {k: round(1000 * v, 2) for k, v in timings.items()}
        response: Response = JSONResponse(body, headers=headers)
    else:
        response = Response(body, media_type=FORMATS[format], headers=headers)
    # The body stays in the budget until it has been sent: a client that never reads its answer
    # holds it, and forty of them must not pile answers up outside the budget.
    kept = min(held, len(response.body))
    await budget.release(held - kept)
    return HeldUntilSent(response, budget, kept)


class HeldUntilSent(Response):
    """`response` as it is, with `nbytes` of the memory budget released once it has been sent
    or its client has gone. The body goes out in chunks: uvicorn waits for a slow reader's
    socket to drain before each message it writes, so the last chunk is all that can still be
    waiting in the process when the budget is released (a single message would be buffered
    whole and return at once)."""

    CHUNK = 1 << 20

    def __init__(self, response: Response, budget: MemoryBudget, nbytes: int) -> None:
        self.__dict__.update(response.__dict__)  # status, headers, body, background
        self._budget, self._nbytes = budget, nbytes

    async def __call__(self, scope, receive, send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            body, size = memoryview(self.body), len(self.body)
            for offset in range(0, max(size, 1), self.CHUNK):
                end = offset + self.CHUNK
                chunk = bytes(body[offset:end])
                await send({"type": "http.response.body", "body": chunk, "more_body": end < size})
            if self.background is not None:
                await self.background()
        finally:
            await self._budget.release(self._nbytes)


async def _in_pool(pool: IoPool, fn, *args, waits: list[float] | None = None):
    """Run `fn` in the I/O pool (its wait for a thread appended to `waits`); an image it cannot
    read is the client's error, not ours, and a pool whose threads are all held answers rather
    than going silent."""
    try:
        result, waited = await pool.run_timed(fn, *args)
        if waits is not None:
            waits.append(waited)
        return result
    except PoolBusyError:
        raise ServiceError(
            503, "busy", "every image thread is busy; retry shortly", {"Retry-After": "1"}
        ) from None
    except PoolStartTimeoutError:
        raise ServiceError(
            504, "timeout", f"no image thread became free within {pool.start_timeout_s:g} s"
        ) from None
    except ImageTooLargeError as exc:
        raise ServiceError(413, "too_many_pixels", str(exc)) from None
    except ImageDecodeError as exc:
        raise ServiceError(422, "bad_image", str(exc)) from None


@asynccontextmanager
async def _holding(budget: MemoryBudget, nbytes: int, settings: ServeSettings):
    """Hold `nbytes` of the memory budget for the block (see `_acquire`)."""
    await _acquire(budget, nbytes, settings)
    try:
        yield
    finally:
        await budget.release(nbytes)


async def _acquire(budget: MemoryBudget, nbytes: int, settings: ServeSettings) -> None:
    """Take `nbytes` of the memory budget: 413 if it can never fit, 503 if it does not in time."""
    try:
        await budget.acquire(nbytes, settings.request_timeout_s)
    except OverBudgetError as exc:
        raise ServiceError(413, "too_large_to_process", str(exc)) from None
    except BudgetTimeoutError:
        raise ServiceError(
            503,
            "busy",
            "the service's memory budget is in use; retry shortly",
            {"Retry-After": "1"},
        ) from None


async def _decode(
    state: ModelState, pool: IoPool, pipeline: SegmentPipeline, data: bytes, waits: list[float]
):
    """Decode in the I/O pool, telling the worker that a batch-mate is on its way meanwhile."""
    state.worker.incoming(+1)
    try:
        return await _in_pool(pool, pipeline.decode, data, waits=waits)
    finally:
        state.worker.incoming(-1)


async def _infer(state: ModelState, settings: ServeSettings, decoded: Decoded) -> Job:
    """Queue the network input and wait for its batch: 503 when full, 504 past the timeout."""
    try:
        job = state.worker.submit(decoded.network_input)
    except QueueFullError:
        raise ServiceError(
            503, "busy", "too many requests in the queue; retry shortly", {"Retry-After": "1"}
        ) from None
    try:
        await asyncio.wait_for(asyncio.wrap_future(job.future), settings.request_timeout_s)
    except TimeoutError:
        job.future.cancel()
        raise ServiceError(
            504, "timeout", f"no result within {settings.request_timeout_s} s"
        ) from None
    except Exception:  # the worker logged the model's failure, with its traceback, once
        raise ServiceError(500, "inference_failed", "the model failed on this request") from None
    return job


def _observe(metrics: ServiceMetrics, timings: dict[str, float], batch_size: int) -> None:
    for stage, key in (
        ("decode", "decode"),
        ("io_wait", "io_wait"),
        ("queue_wait", "queue"),
        ("inference", "inference"),
        ("encode", "encode"),
    ):
        metrics.stages[stage].observe(timings[key])
    metrics.batch_size.observe(batch_size)


async def _read_image_bytes(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").lower()
    try:
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=10)
            upload = form.get("file") or next(
                (v for v in form.values() if isinstance(v, UploadFile)), None
            )
            if not isinstance(upload, UploadFile):
                raise ServiceError(
                    422, "no_file", "multipart upload without a file part named 'file'"
                )
            return await upload.read()
        if content_type.startswith(RAW_TYPES):
            return await request.body()
    except ClientDisconnect:
        if request.scope.get(REFUSED_BY_SERVER):  # the server cut a malformed body off
            raise ServiceError(400, "bad_request", BAD_BODY) from None
        # The client went away mid-upload: one line in the log and a count, no traceback.
        log.info("client closed the connection during its upload")
        raise ServiceError(499, "client_closed", "the client closed the connection") from None
    raise ServiceError(
        415,
        "unsupported_media_type",
        f"send an image (image/jpeg, image/png, …) or multipart/form-data, not "
        f"{content_type or 'no content type'}",
    )
