"""A guard on connections, below the application: uvicorn's h11 protocol with three additions.

- At most `max_connections` open at once: one more is answered 503 and closed at once, so a
  flood of half-sent requests cannot exhaust the process's file descriptors while a normal
  request waits.
- Request headers must arrive within `header_timeout_s` of the connection (or of the previous
  answer on a kept-alive one); else 408 and close. Uvicorn times out idle keep-alive
  connections, not slow headers. The body's own deadline is the application's (UploadGuard).
- A request that h11 cannot parse (oversized or malformed headers) gets the service's JSON
  error shape instead of uvicorn's plain-text 400.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable

from uvicorn.protocols.http.h11_impl import H11Protocol

from genadapt.serve.errors import BAD_BODY, REFUSED_BY_SERVER, error_bytes

log = logging.getLogger(__name__)

TOO_MANY = error_bytes(
    503,
    "Service Unavailable",
    "too_many_connections",
    "too many open connections; retry shortly",
    "retry-after: 1\r\n",
)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the limits above; `guarded_protocol` sets them."""

    max_connections: int = 256
    header_timeout_s: float = 10.0
    slow_headers: bytes = b""
    _header_timer = None

    @staticmethod
    def on_refused(status: int) -> None:
        """Counts a refusal at the connection (set by `guarded_protocol`)."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse(TOO_MANY, 503)
            return
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._between_requests():
            self._arm_header_timer()  # a new request's headers are on their way
        super().data_received(data)
        if not self._between_requests():
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        if self.cycle is not None and not self.cycle.response_started:
            # h11 failed inside a request's body (bad chunked framing): the request is
            # counted once, by the application, as its 400 (REFUSED_BY_SERVER tells it that
            # the server, not the client, closed the connection).
            self.cycle.scope[REFUSED_BY_SERVER] = 400
            self._close_with(error_bytes(400, "Bad Request", "bad_request", BAD_BODY))
            return
        self._refuse(
            error_bytes(400, "Bad Request", "bad_request", f"{msg} (headers too large?)"), 400
        )

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._between_requests() and not self.transport.is_closing():
            self._refuse(self.slow_headers, 408)

    def _refuse(self, response: bytes, status: int) -> None:
        self.on_refused(status)
        self._close_with(response)

    def _close_with(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


def guarded_protocol(
    max_connections: int,
    header_timeout_s: float,
    on_refused: Callable[[int], None] = lambda status: None,
) -> type[H11Protocol]:
    """A uvicorn `http` protocol class with these limits; `on_refused(status)` counts refusals."""
    slow_headers = error_bytes(
        408,
        "Request Timeout",
        "header_timeout",
        f"request headers did not arrive within {header_timeout_s:g} s",
    )
    limits = {
        "max_connections": max_connections,
        "header_timeout_s": header_timeout_s,
        "slow_headers": slow_headers,
        "on_refused": staticmethod(on_refused),
    }
    return type("GuardedH11Protocol", (GuardedH11Protocol,), limits)


def raise_open_file_limit() -> int:
    """Lift the soft limit on open files to the hard one (often 1024 → 1M); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    return soft
