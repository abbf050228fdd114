"""ASGI middleware around the app: metrics for every answer (also failures and aborts), the
operator's endpoints behind the API key when asked, limits on uploads (their size, counted as
bytes arrive, and the time they may take), and HEAD wherever GET works."""

from __future__ import annotations

import asyncio
import hmac
import time

from genadapt.serve.errors import REFUSED_BY_SERVER, error_response
from genadapt.serve.metrics import ServiceMetrics

KNOWN_PATHS = {"/v1/segment", "/v1/model", "/healthz", "/readyz", "/metrics", "/"}
OPS_PATHS = ("/metrics", "/openapi.json", "/docs", "/redoc")
CLIENT_CLOSED = 499  # nginx's code for a client that went away before the answer


class RequestMetrics:
    """Count every answer by path and status, including unhandled errors (500) and clients
    that left before an answer (499), and time /v1/segment."""

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = None
        started = time.perf_counter()

        async def recording_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except Exception:
            status = status or 500
            raise
        finally:
            path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
            status = status or scope.get(REFUSED_BY_SERVER) or CLIENT_CLOSED
            self.metrics.requests.labels(path=path, status=str(status)).inc()
            if path == "/v1/segment":
                self.metrics.stages["request"].observe(time.perf_counter() - started)


class HeadAsGet:
    """HEAD wherever GET works (RFC 9110 asks it of a server): the request runs as a GET and
    only its headers go out, Content-Length included. FastAPI routes answer GET alone, so
    without this a monitor's or a crawler's HEAD /favicon.ico got 405."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def headers_only(message):
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(dict(scope, method="GET"), receive, headers_only)


class OpsAuth:
    """With `protect_ops`, /metrics and the API docs need the API key like /v1/* does."""

    def __init__(self, app, api_key: str) -> None:
        self.app, self.api_key = app, api_key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] in OPS_PATHS:
            headers = dict(scope.get("headers", []))
            given = headers.get(b"x-api-key", b"")
            auth = headers.get(b"authorization", b"")
            if not given and auth.lower().startswith(b"bearer "):
                given = auth[7:].strip()
            if not hmac.compare_digest(given, self.api_key):
                response = error_response(
                    401, "unauthorized", "missing or wrong API key", {"WWW-Authenticate": "Bearer"}
                )
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


class UploadGuard:
    """Count body bytes as they arrive and answer 413 past `max_bytes`, so that an oversized
    upload is never read whole (also without a Content-Length); and answer 408 when the whole
    body has not arrived within `timeout_s` (a slow or stalled upload holds no worker for
    longer than that)."""

    def __init__(self, app, max_bytes: int, timeout_s: float, paths=("/v1/",)) -> None:
        self.app, self.max_bytes, self.timeout_s, self.paths = app, max_bytes, timeout_s, paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.paths):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._reject(413, scope, receive, send)
        seen = 0
        body_done = False
        started = False
        deadline = time.monotonic() + self.timeout_s

        async def guarded_receive():
            nonlocal seen, body_done
            if body_done:  # after the body only a disconnect can come: wait for it freely
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                raise _BodyTimeoutError from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise _BodyTooLargeError
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except _BodyTooLargeError:
            if not started:
                await self._reject(413, scope, receive, send)
        except _BodyTimeoutError:
            if not started:
                await self._reject(408, scope, receive, send)

    async def _reject(self, status: int, scope, receive, send):
        # Either way the body was not read to its end, so the connection cannot carry another
        # request: it is closed (a 413 left it open, and the unread rest earned a 408 later).
        if status == 413:
            message = f"request body over {self.max_bytes / 1e6:.1f} MB"
            response = error_response(413, "too_large", message, {"Connection": "close"})
        else:
            message = f"the upload did not arrive within {self.timeout_s:g} s"
            response = error_response(408, "upload_timeout", message, {"Connection": "close"})
        await response(scope, receive, send)


class _BodyTooLargeError(Exception):
    """Raised from inside `receive` to abandon reading an oversized body."""


class _BodyTimeoutError(Exception):
    """Raised from inside `receive` when the body is late."""
