"""The real thing: genadapt-serve under uvicorn on a free loopback port (its web page in
headless Chromium is tests/serve/test_page.py)."""

import io
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from serve_helpers import photo, start


@pytest.fixture
def server(model_path):
    url, proc = start(model_path, max_batch=4)
    yield url, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_uvicorn_serves_and_shuts_down_gracefully(server):
    url, proc = server
    response = httpx.post(f"{url}/v1/segment", content=photo(),
                          headers={"content-type": "image/jpeg"}, timeout=30)  # fmt: skip
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (128, 64)
    assert httpx.get(f"{url}/v1/model").json()["max_batch"] == 4  # from the environment

    def request(i):
        headers = {"content-type": "image/jpeg"}
        return httpx.post(
            f"{url}/v1/segment", content=photo(i), headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(request, i) for i in range(8)]
        # SIGTERM once the server is busy with them: stop accepting, finish in-flight, exit.
        while not any(f.done() for f in futures):
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        outcomes = []
        for f in futures:
            try:
                outcomes.append(f.result())
            except httpx.TransportError:
                outcomes.append("refused")  # sent after the listener closed: never half-served
    # Uvicorn re-raises SIGTERM after its graceful shutdown, so the status says "terminated".
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    log = proc.stdout.read()
    assert "Waiting for application shutdown" in log and "Application shutdown complete" in log
    assert all(o in (200, "refused") for o in outcomes) and 200 in outcomes


def test_client_module_against_the_server(server, tmp_path):
    from genadapt.serve.client import cli as client_cli

    url, _ = server
    (tmp_path / "street.jpg").write_bytes(photo(3))
    assert client_cli([url, str(tmp_path / "street.jpg"), "--out", str(tmp_path / "out")]) == 0
    labels = Image.open(tmp_path / "out/street_labels.png")
    assert labels.size == (128, 64) and labels.mode == "L"
    assert Image.open(tmp_path / "out/street_overlay.jpg").size == (128, 64)


def test_head_over_real_http_keeps_the_connection_usable(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=10) as http:  # one kept-alive connection
        for path in ("/favicon.ico", "/", "/docs"):
            head = http.head(path)
            assert head.status_code == 200 and head.content == b"", path
            assert int(head.headers["content-length"]) > 0
        assert http.get("/healthz").json() == {"status": "ok"}  # nothing left on the wire
