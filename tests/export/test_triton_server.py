"""The exported Triton repository on a real Triton server: `genadapt-triton serve` starts the
`tritonserver` of the nvidia-pytriton wheel (or GENADAPT_TRITONSERVER) on the genadapt-python
model, and clients send images over HTTP and gRPC."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from genadapt.checkpoint import save_checkpoint
from genadapt.commands.predict import cli as predict
from genadapt.errors import GenadaptError
from genadapt.export.cli import cli as export
from genadapt.imaging import network_input

from helpers import trained_like_checkpoint

http = pytest.importorskip("tritonclient.http")
grpc = pytest.importorskip("tritonclient.grpc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    from genadapt.export.triton_server import find_tritonserver

    try:
        find_tritonserver()
    except GenadaptError as exc:
        if os.environ.get("CI"):  # `make setup` installs it: in CI its absence is a failure
            raise
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("triton")
    checkpoint = save_checkpoint(trained_like_checkpoint(), root / "model.pt")
    assert export([str(checkpoint), "--out", str(root / "export"), "--triton",
                   "--parity-images", "2"]) == 0  # fmt: skip
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    command = [sys.executable, "-m", "genadapt.export.triton", "serve", str(root / "export/triton"),
               "--http-port", str(ports["http"]), "--grpc-port", str(ports["grpc"]),
               "--metrics-port", str(ports["metrics"])]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(root / "cache")}
    log = open(root / "tritonserver.log", "wb")  # noqa: SIM115 - open for the server's life
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 120
    while True:
        assert server.poll() is None, (root / "tritonserver.log").read_text()[-3000:]
        with contextlib.suppress(httpx.TransportError):  # not listening yet
            if httpx.get(f"http://127.0.0.1:{ports['http']}/v2/health/ready").status_code == 200:
                break
        assert time.time() < deadline, "Triton did not become ready"
        time.sleep(0.5)
    yield root, ports
    server.terminate()
    try:
        server.wait(timeout=40)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    paths = []
    for i in range(count):
        path = folder / f"street_{i}.png"
        Image.fromarray(rng.integers(0, 256, (90, 170, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_triton_answers_what_genadapt_predict_writes(triton):
    root, ports = triton
    files = photos(root / "photos", 3)
    assert predict([str(root / "model.pt"), *map(str, files), "--out", str(root / "pred")]) == 0
    batch = np.stack([network_input(f.read_bytes(), (64, 32)) for f in files])
    expected = np.stack([np.asarray(Image.open(root / "pred" / f"{f.stem}_labels.png"))
                         for f in files])  # fmt: skip

    client = http.InferenceServerClient(f"127.0.0.1:{ports['http']}")
    request = http.InferInput("image", batch.shape, "UINT8")
    request.set_data_from_numpy(batch)
    labels = client.infer("genadapt-python", [request]).as_numpy("labels")
    assert labels.dtype == np.uint8 and labels.shape == expected.shape == (3, 64, 128)
    np.testing.assert_array_equal(labels, expected)

    over_grpc = grpc.InferenceServerClient(f"127.0.0.1:{ports['grpc']}")
    request = grpc.InferInput("image", batch[:1].shape, "UINT8")
    request.set_data_from_numpy(batch[:1])
    np.testing.assert_array_equal(
        over_grpc.infer("genadapt-python", [request]).as_numpy("labels"), expected[:1]
    )


def test_dynamic_batching_forms_batches_under_concurrent_load(triton):
    _, ports = triton
    image = np.random.default_rng(1).integers(0, 256, (1, 32, 64, 3), dtype=np.uint8)

    def one(_):
        client = http.InferenceServerClient(f"127.0.0.1:{ports['http']}")
        request = http.InferInput("image", image.shape, "UINT8")
        request.set_data_from_numpy(image)
        return client.infer("genadapt-python", [request]).as_numpy("labels").shape

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(one, range(64))) == {(1, 64, 128)}
    stats = http.InferenceServerClient(f"127.0.0.1:{ports['http']}").get_inference_statistics(
        "genadapt-python"
    )["model_stats"][0]
    sizes = {int(entry["batch_size"]) for entry in stats["batch_stats"]}
    assert max(sizes) > 1, stats["batch_stats"]


def test_health_and_metrics_answer(triton):
    _, ports = triton
    assert httpx.get(f"http://127.0.0.1:{ports['http']}/v2/health/live").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{ports['http']}/v2/health/ready").status_code == 200
    metrics = httpx.get(f"http://127.0.0.1:{ports['metrics']}/metrics").text
    assert 'nv_inference_count{model="genadapt-python",version="1"}' in metrics
