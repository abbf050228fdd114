"""Endpoints: /v1/segment, /v1/model, /healthz, /readyz, /metrics and the web page at /."""

from __future__ import annotations

import asyncio
import hmac
import time
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import UploadFile

import genadapt
from genadapt.imaging import (
    ImageDecodeError,
    ImageTooLargeError,
    network_input,
    network_input_and_photo,
    probe_size,
)
from genadapt.serve.errors import ERROR_EXAMPLE, ServiceError
from genadapt.serve.outputs import FORMATS, encode, resize_labels
from genadapt.serve.worker import QueueFullError

router = APIRouter()
RAW_TYPES = ("image/", "application/octet-stream")
PAGE = Path(__file__).parent / "static" / "index.html"


def require_api_key(request: Request) -> None:
    expected = request.app.state.settings.api_key
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


def ready_model(request: Request):
    state = request.app.state.model
    if state.error:
        raise ServiceError(503, "model_failed", f"the model failed to load: {state.error}")
    if not state.ready.is_set():
        raise ServiceError(503, "loading", "the model is loading", {"Retry-After": "5"})
    return state


@router.get("/healthz", tags=["ops"])
async def healthz() -> dict:
    """The process is alive (never touches the model)."""
    return {"status": "ok"}


@router.get("/readyz", tags=["ops"], responses={503: {"content": {"application/json": {}}}})
async def readyz(request: Request) -> dict:
    """200 once the model is loaded and a warm-up inference passed; 503 before (or if it failed)."""
    ready_model(request)
    return {"status": "ready"}


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests by status; queue, decode, inference, encode, total time."""
    m = request.app.state.metrics
    worker = request.app.state.model.worker
    m.queue_depth.set(worker.depth() if worker else 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")


@router.get("/v1/model", tags=["segmentation"])
async def model_info(request: Request, _: ApiKey) -> dict:
    """Classes and palette, input and output sizes, backend, precision, model hash, versions."""
    state = ready_model(request)
    seg = state.segmenter
    return {
        "classes": [
            {"id": i, "name": n, "color": list(c)}
            for i, (n, c) in enumerate(
                zip(seg.label_space.names, seg.label_space.palette, strict=True)
            )
        ],
        **seg.describe(),
        "model": request.app.state.settings.model,
        "model_sha256": state.model_sha256,
        "versions": {"genadapt": genadapt.__version__},
        "max_batch": request.app.state.settings.max_batch,
    }


SEGMENT_RESPONSES = {
    200: {
        "description": "The label map: uint8 train ids (png, npy), colours, an overlay, or JSON.",
        "content": {
            "image/png": {},
            "image/jpeg": {},
            "application/x-npy": {},
            "application/json": {
                "example": {
                    "height": 1024,
                    "width": 2048,
                    "classes": [
                        {
                            "id": 0,
                            "name": "road",
                            "color": [128, 64, 128],
                            "pixels": 734003,
                            "fraction": 0.35,
                            "rle": [1310720, 734003],
                        }
                    ],
                }
            },
        },
    },
    **{
        status: {"description": desc, "content": {"application/json": {"example": ERROR_EXAMPLE}}}
        for status, desc in [
            (401, "missing or wrong API key"),
            (413, "body or image too large"),
            (415, "not an image upload"),
            (422, "undecodable image"),
            (503, "queue full (Retry-After) or model not ready"),
            (504, "timed out"),
        ]
    },
}
SEGMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            **{
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff")
            },
        },
    }
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
    _: ApiKey,
    format: Annotated[Literal["png", "color", "overlay", "npy", "json"], Query()] = "png",
    size: Annotated[
        Literal["native", "input"],
        Query(
            description="native: 2× the network "
            "size (2048×1024 for 1024×512); input: the uploaded image's size"
        ),
    ] = "native",
    overlay: Annotated[bool, Query(description="json only: add a base64 JPEG overlay")] = False,
) -> Response:
    """Segment one image, sent as a multipart upload (`file`) or as the raw body."""
    started = time.perf_counter()
    state = ready_model(request)
    settings, metrics, pool = (
        request.app.state.settings,
        request.app.state.metrics,
        request.app.state.io_pool,
    )
    data = await _read_image_bytes(request)
    seg = state.segmenter
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    photo_needed = format == "overlay" or (format == "json" and overlay)
    state.worker.incoming(+1)  # tells the worker that a batch-mate is on its way
    try:
        net, photo, shape = await loop.run_in_executor(
            pool, _decode, data, settings.max_pixels, seg, photo_needed
        )
    except ImageTooLargeError as exc:
        raise ServiceError(413, "too_many_pixels", str(exc)) from None
    except ImageDecodeError as exc:
        raise ServiceError(422, "bad_image", str(exc)) from None
    finally:
        state.worker.incoming(-1)
    decode_s = time.perf_counter() - t0
    try:
        job = state.worker.submit(net)
    except QueueFullError:
        raise ServiceError(
            503, "busy", "too many requests in the queue; retry shortly", {"Retry-After": "1"}
        ) from None
    try:
        labels = await asyncio.wait_for(asyncio.wrap_future(job.future), settings.request_timeout_s)
    except TimeoutError:
        job.future.cancel()
        raise ServiceError(
            504, "timeout", f"no result within {settings.request_timeout_s} s"
        ) from None
    t1 = time.perf_counter()
    out_size = seg.output_size if size == "native" else shape
    body = await loop.run_in_executor(
        pool, _encode, format, labels, photo, out_size, seg, settings.png_compression, overlay
    )
    encode_s = time.perf_counter() - t1
    timings = {
        "decode": decode_s,
        "queue": job.queue_wait,
        "inference": job.inference,
        "encode": encode_s,
        "total": time.perf_counter() - started,
    }
    for stage, key in (
        ("decode", "decode"),
        ("queue_wait", "queue"),
        ("inference", "inference"),
        ("encode", "encode"),
    ):
        metrics.stages[stage].observe(timings[key])
    metrics.batch_size.observe(job.batch_size)
    headers = {
        "Server-Timing": ", ".join(f"{k};dur={1000 * v:.2f}" for k, v in timings.items()),
        "X-Batch-Size": str(job.batch_size),
    }
    if format == "json":
        body["timing_ms"] = {k: round(1000 * v, 2) for k, v in timings.items()}
        return JSONResponse(body, headers=headers)
    return Response(body, media_type=FORMATS[format], headers=headers)


async def _read_image_bytes(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file") or next(
            (v for v in form.values() if isinstance(v, UploadFile)), None
        )
        if not isinstance(upload, UploadFile):
            raise ServiceError(422, "no_file", "multipart upload without a file part named 'file'")
        return await upload.read()
    if content_type.startswith(RAW_TYPES):
        return await request.body()
    raise ServiceError(
        415,
        "unsupported_media_type",
        f"send an image (image/jpeg, image/png, …) or multipart/form-data, not "
        f"{content_type or 'no content type'}",
    )


def _decode(data: bytes, max_pixels: int, seg, photo_needed: bool):
    """(network input, the photo when the response shows it, the upload's (W, H)).

    The network input is built exactly as genadapt-predict builds it (JPEG decoded at reduced
    scale, then resized), so the service and the CLI return the same labels.
    """
    if photo_needed:
        net, photo = network_input_and_photo(data, seg.input_size, seg.output_size, max_pixels)
    else:
        net, photo = network_input(data, seg.input_size, max_pixels), None
    return net, photo, probe_size(data)


def _encode(fmt, labels, rgb, out_size, seg, png_level, with_overlay):
    labels = resize_labels(labels, out_size)
    return encode(fmt, labels, rgb, seg.label_space, png_level, with_overlay)
