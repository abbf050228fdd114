"""The real thing: genadapt-serve under uvicorn on a free loopback port, and its web page in
headless Chromium."""

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo(seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def server(model_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "genadapt.serve.cli", str(model_path), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "GENADAPT_MAX_BATCH": "4"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.time() < deadline, "server did not become ready"
        time.sleep(0.1)
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
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # stop accepting, finish in-flight requests, exit
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


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_web_page_in_headless_chromium(server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    url, _ = server
    image = tmp_path / "street.jpg"
    image.write_bytes(photo(7))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page()
        page.goto(url + "/")
        page.set_input_files("#file", str(image))
        page.wait_for_function(
            "document.getElementById('overlay').src.startsWith('data:image/jpeg')", timeout=30000
        )
        assert page.locator("#legend li").count() >= 1
        assert "ms" in page.locator("#latency").inner_text()
        width = page.evaluate("document.getElementById('overlay').naturalWidth")
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    assert width == 128


def test_client_module_against_the_server(server, tmp_path):
    from genadapt.serve.client import cli as client_cli

    url, _ = server
    (tmp_path / "street.jpg").write_bytes(photo(3))
    assert client_cli([url, str(tmp_path / "street.jpg"), "--out", str(tmp_path / "out")]) == 0
    labels = Image.open(tmp_path / "out/street_labels.png")
    assert labels.size == (128, 64) and labels.mode == "L"
    assert Image.open(tmp_path / "out/street_overlay.jpg").size == (128, 64)
