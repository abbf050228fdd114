"""`genadapt-bench http`: latency and throughput of a running genadapt-serve at several
concurrency levels, with the server's own split (decode, queue, inference, encode) read from
its Server-Timing header. Traffic goes to the given URL only (a loopback server by default).
Each client thread keeps one connection alive across its requests, as production clients do."""

from __future__ import annotations

import http.client
import re
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from genadapt.benchmarks.timing import summarize

TIMING = re.compile(r"(\w+);dur=([\d.]+)")


_local = threading.local()  # one keep-alive connection per client thread


def _connection(url: str) -> http.client.HTTPConnection:
    """This thread's persistent connection to `url`, as a keep-alive client holds one (a new
    TCP connection per request would time the handshake, not the service)."""
    if getattr(_local, "url", None) != url:
        parts = urllib.parse.urlsplit(url)
        _local.url = url
        _local.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    return _local.connection


def _request(url: str, body: bytes) -> tuple[float, dict[str, float], int]:
    headers = {"content-type": "image/jpeg"}
    t = time.perf_counter()
    for attempt in (1, 2):  # a connection the server closed while idle is opened again, once
        connection = _connection(url)
        try:
            connection.request("POST", "/v1/segment", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            break
        except (ConnectionError, http.client.HTTPException):
            connection.close()
            _local.url = None
            if attempt == 2:
                raise
    timing = response.headers.get("server-timing", "")
    server = {k: float(v) / 1000 for k, v in TIMING.findall(timing)}
    if response.headers.get("connection", "").lower() == "close":
        connection.close()
        _local.url = None
    return time.perf_counter() - t, server, response.status


def run_http(url: str, body: bytes, concurrency: list[int], requests: int) -> dict:
    _request(url, body)  # warm-up
    levels = []
    for c in concurrency:
        started = time.perf_counter()
        with ThreadPoolExecutor(c) as pool:
            results = list(pool.map(lambda _: _request(url, body), range(requests)))
        wall = time.perf_counter() - started
        latency = summarize([r[0] for r in results])
        server = {
            k: round(1000 * float(np.median([r[1][k] for r in results])), 3) for k in results[0][1]
        }
        levels.append(
            {
                "concurrency": c,
                "requests": requests,
                "throughput_rps": round(requests / wall, 2),
                "latency": latency,
                "server_median_ms": server,
                "overhead_beyond_network_ms": round(server["total"] - server["inference"], 3),
                "errors": sum(r[2] != 200 for r in results),
            }
        )
    return {"url": url, "levels": levels}
