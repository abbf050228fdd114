"""The container image, as a user runs it: genadapt-serve starts from the image with a model
exported on the host and mounted read-only, answers /readyz, returns the host's label map for an
image, and stops cleanly on `stop`.

Needs a built image: `make image-smoke` builds one (with docker, or podman where no Docker engine
runs) and runs this file with GENADAPT_IMAGE set; CI does so on every submission (.ci/run).
"""

from __future__ import annotations

import io
import os
import shlex
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from genadapt.checkpoint import save_checkpoint
from genadapt.export.exporter import ExportOptions, run_export
from genadapt.imaging import network_input
from genadapt.runtime import RuntimeOptions, load_segmenter

from helpers import make_checkpoint

IMAGE = os.environ.get("GENADAPT_IMAGE")
CONTAINER = shlex.split(os.environ.get("GENADAPT_CONTAINER", "docker"))
pytestmark = pytest.mark.skipif(
    not IMAGE, reason="set GENADAPT_IMAGE to a built image (make image-smoke does)"
)


def container(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CONTAINER, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def exported():
    # World-readable: the image runs as an unprivileged user (uid 10001), not as the host's.
    folder = Path(tempfile.mkdtemp(prefix="genadapt-image-"))
    folder.chmod(0o755)
    checkpoint = save_checkpoint(make_checkpoint(seed=3), folder / "checkpoint.pt")
    run_export(checkpoint, folder / "export", ExportOptions(flavours=("labels",), parity_images=2))
    for path in (folder / "export").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield folder / "export"
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_the_image_serves_the_hosts_labels_and_stops_cleanly(exported):
    name = f"genadapt-smoke-{uuid.uuid4().hex[:8]}"
    port = free_port()
    started = container(
        "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000",
        "-v", f"{exported}:/models:ro", "-e", "GENADAPT_MODEL=/models/model.labels.onnx",
        IMAGE,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            state = container("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            assert state == "true", container("logs", name).stdout + container("logs", name).stderr
            assert time.time() < deadline, "the container did not become ready"
            time.sleep(0.5)
        rng = np.random.default_rng(5)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(buf, "PNG")
        response = httpx.post(
            f"{url}/v1/segment", content=buf.getvalue(),
            headers={"content-type": "image/png"}, timeout=60,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        served = np.asarray(Image.open(io.BytesIO(response.content)))
        host = load_segmenter(exported / "model.labels.onnx", RuntimeOptions(device="cpu"))
        batch = network_input(buf.getvalue(), host.spec.input_size)[None]
        expected = host.run(batch, host.spec.output_size)[0]
        assert served.shape == expected.shape
        assert (served == expected).mean() >= 0.999  # same graph; another CPU may round apart
        assert httpx.get(f"{url}/v1/model", timeout=5).json()["backend"] == "onnxruntime"

        stopped = container("stop", "-t", "30", name)
        assert stopped.returncode == 0, stopped.stderr
        code = container("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        logs = container("logs", name)
        assert "Application shutdown complete" in logs.stdout + logs.stderr
        assert code in ("0", "143"), code  # uvicorn re-raises SIGTERM after a clean shutdown
    finally:
        container("rm", "-f", name)
