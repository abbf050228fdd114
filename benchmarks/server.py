"""A genadapt-serve process on a free loopback port for the length of a `with` block."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from genadapt.errors import GenadaptError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    pid: int  # its CPU time is the benchmark's own, not another process's


@contextmanager
def serving(
    model: str | Path, device: str, max_batch: int | None = None, timeout_s: float = 300
) -> Iterator[Server]:
    """Start the service on `model`, wait until /readyz says so, yield it, then stop it
    (SIGTERM, the graceful path) whatever happened inside the block."""
    env = dict(os.environ)
    if max_batch is not None:
        env["GENADAPT_MAX_BATCH"] = str(max_batch)
    command = [sys.executable, "-m", "genadapt.serve.cli", str(model), "--device", device]
    with running(command, env, timeout_s) as server:
        yield server


@contextmanager
def replaying(network: tuple[int, int], timeout_s: float = 120) -> Iterator[Server]:
    """The service with its network replaced by a replay (replay_server.py), for the length
    of the block: what the service costs around the network."""
    command = [sys.executable, "-m", "genadapt.benchmarks.replay_server",
               "--network", f"{network[0]}x{network[1]}"]  # fmt: skip
    with running(command, dict(os.environ), timeout_s) as server:
        yield server


@contextmanager
def running(command: list[str], env: dict, timeout_s: float) -> Iterator[Server]:
    """`command --port P` on a free port until ready, stopped gracefully after the block."""
    port = free_port()
    command = [*command, "--port", str(port)]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server, timeout_s)
        yield Server(url, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_ready(url: str, server: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if server.poll() is not None:
            tail = (server.stderr.read() if server.stderr else "")[-2000:]
            raise GenadaptError(f"the benchmark server exited during start-up:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise GenadaptError(f"{url} was not ready within {timeout_s:.0f} s")
