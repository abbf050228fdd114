"""`genadapt-bench http`: latency and throughput of a running genadapt-serve at several
concurrency levels, with the server's own split (decode, queue, inference, encode) read from
its Server-Timing header. Traffic goes to the given URL only (a loopback server by default)."""

from __future__ import annotations

import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from genadapt.benchmarks.timing import summarize

TIMING = re.compile(r"(\w+);dur=([\d.]+)")


def _request(url: str, body: bytes) -> tuple[float, dict[str, float], int]:
    request = urllib.request.Request(
        f"{url}/v1/segment", data=body, headers={"content-type": "image/jpeg"}, method="POST"
    )
    t = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        server = {k: float(v) / 1000 for k, v in TIMING.findall(response.headers["server-timing"])}
        status = response.status
    return time.perf_counter() - t, server, status


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
