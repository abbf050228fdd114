"""The service under a hostile or broken client, on a real uvicorn process on loopback: every
failure a JSON answer, counted; slow and abandoned connections cut; memory held to its budget.
Every loop here is bounded in count and time."""

from __future__ import annotations

import contextlib
import io
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from serve_helpers import photo, start, stop


def raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_answer(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def counted(url: str, status: int, path: str | None = None) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        match = re.match(
            r'genadapt_requests_total\{path="([^"]+)",status="(\d+)"\} ([\d.e+]+)', line
        )
        if match and match[2] == str(status) and (path is None or match[1] == path):
            total += float(match[3])
    return total


@pytest.fixture
def guarded(model_path):
    url, proc = start(model_path, body_timeout_s=1, header_timeout_s=1, max_connections=24)
    yield url, proc
    if proc.poll() is None:
        stop(proc)


def test_slow_uploads_and_slow_headers_get_408_and_are_closed(guarded):
    url, _ = guarded
    body = photo(1)
    with raw(url) as slow_body:  # a slowloris upload: headers at once, then 4 bytes a second
        slow_body.sendall(
            b"POST /v1/segment HTTP/1.1\r\nHost: x\r\ncontent-type: image/jpeg\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
        )
        started = time.time()
        answer = b""
        for i in range(12):  # at most 3 s of dribbling
            try:
                slow_body.sendall(body[4 * i : 4 * i + 4])
            except OSError:
                break
            slow_body.settimeout(0.25)
            try:
                answer += slow_body.recv(65536)
            except TimeoutError:
                continue
            if answer:
                break
        answer += read_answer(slow_body, 2)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"upload_timeout"' in answer and time.time() - started < 3
    with raw(url) as slow_headers:  # headers that never finish
        slow_headers.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\n")
        answer = read_answer(slow_headers, 3)
    assert answer.startswith(b"HTTP/1.1 408") and b'"header_timeout"' in answer
    assert counted(url, 408) >= 2


def test_a_flood_of_half_sent_requests_does_not_starve_a_normal_one(guarded):
    url, _ = guarded
    sockets = []
    try:
        for _ in range(60):  # more than max_connections (24), each a request never finished
            s = raw(url)
            s.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\ncontent-length: 100000\r\n")
            sockets.append(s)
        started = time.time()
        try:
            status = httpx.post(
                f"{url}/v1/segment",
                content=photo(2),
                headers={"content-type": "image/jpeg"},
                timeout=5,
            ).status_code
        except httpx.TransportError:
            status = "closed"
        assert status in (200, 503) and time.time() - started < 2.5
    finally:
        for s in sockets:
            s.close()
    time.sleep(1.5)  # the header timeout has cut whatever was left: normal service again
    ok = httpx.post(
        f"{url}/v1/segment", content=photo(3), headers={"content-type": "image/jpeg"}, timeout=10
    )
    assert ok.status_code == 200
    assert counted(url, 503, "connection") >= 1


def test_undecodable_oversized_and_aborted_requests_are_json_and_counted(guarded):
    url, proc = guarded
    bad = httpx.post(
        f"{url}/v1/segment",
        content=b"\xff\xd8\xff\xe0\x01\x00JFIF\x00",
        headers={"content-type": "image/jpeg"},
        timeout=10,
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_image"
    assert counted(url, 422, "/v1/segment") == 1
    with raw(url) as s:  # headers past h11's limit: uvicorn's own 400, in our JSON shape
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000)
        answer = read_answer(s, 3)
    assert answer.startswith(b"HTTP/1.1 400") and b'"bad_request"' in answer
    for _ in range(3):  # uploads abandoned half-way
        with raw(url) as s:
            s.sendall(
                b"POST /v1/segment HTTP/1.1\r\nHost: x\r\ncontent-type: image/jpeg\r\n"
                b"content-length: 5000\r\n\r\n" + b"x" * 100
            )
    deadline = time.time() + 5
    while counted(url, 499) < 3 and time.time() < deadline:
        time.sleep(0.1)
    assert counted(url, 499, "/v1/segment") == 3
    log = stop(proc)
    assert log.count("client closed the connection during its upload") == 3
    assert "Traceback" not in log and "ClientDisconnect" not in log


def worst_case_png() -> bytes:
    """150 KB of PNG that decodes to 6300×6300 RGBA: 159 MB of pixels."""
    rgba = np.zeros((6300, 6300, 4), np.uint8)
    rgba[::7, :, 0], rgba[..., 3] = 255, 200
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def budget_used(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    (value,) = re.findall(r"^genadapt_memory_budget_used_bytes ([\d.e+]+)$", text, re.M)
    return float(value)


def resident_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise AssertionError(field)


def test_concurrent_worst_case_uploads_stay_within_the_memory_budget(model_path):
    budget_mb = 1000
    url, proc = start(model_path, memory_budget_mb=budget_mb, workers_io=4)
    try:
        data = worst_case_png()
        httpx.post(
            f"{url}/v1/segment",
            content=photo(1),
            headers={"content-type": "image/jpeg"},
            timeout=30,
        )
        baseline = resident_mb(proc.pid, "VmRSS")

        def overlay_at_input_size(_):
            return httpx.post(
                f"{url}/v1/segment",
                params={"size": "input", "format": "overlay"},
                content=data,
                headers={"content-type": "image/png"},
                timeout=120,
            )

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(overlay_at_input_size, range(4)))
        assert [a.status_code for a in answers] == [200] * 4
        # size=input is capped at max_output_pixels (16.8 MP): 4096×4096 for this square
        assert Image.open(io.BytesIO(answers[0].content)).size == (4096, 4096)
        peak = resident_mb(proc.pid, "VmHWM")
        assert peak - baseline < budget_mb, (peak, baseline)
        time.sleep(0.5)
        after = resident_mb(proc.pid, "VmRSS")
        assert after - baseline < 300, (after, baseline)  # the spike was given back
    finally:
        stop(proc)


def test_an_image_that_could_never_fit_the_budget_is_refused(model_path):
    url, proc = start(model_path, memory_budget_mb=200)
    try:
        answer = httpx.post(
            f"{url}/v1/segment",
            content=worst_case_png(),
            headers={"content-type": "image/png"},
            timeout=30,
        )
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "too_large_to_process"
        assert "memory budget of 200 MB" in answer.json()["error"]["message"]
    finally:
        stop(proc)


def progressive_cmyk_jpeg(side: int = 6000) -> bytes:
    """A progressive CMYK JPEG: libjpeg holds its coefficients at full size while decoding."""
    small = np.random.default_rng(0).integers(0, 255, (side // 32, side // 32, 3), np.uint8)
    image = Image.fromarray(small).resize((side, side), Image.Resampling.BILINEAR).convert("CMYK")
    buf = io.BytesIO()
    image.save(buf, "JPEG", progressive=True, quality=85)
    return buf.getvalue()


def test_four_progressive_cmyk_jpegs_stay_within_a_small_budget(model_path):
    # Charged at their draft scale alone, four of these were admitted together under a 256 MB
    # budget and resident memory rose by 1.14 GB. Charged with the coefficient buffer, they
    # queue for the budget instead.
    budget_mb = 450
    url, proc = start(model_path, memory_budget_mb=budget_mb, workers_io=4)
    try:
        data = progressive_cmyk_jpeg()
        httpx.post(f"{url}/v1/segment", content=photo(1),
                   headers={"content-type": "image/jpeg"}, timeout=30)  # fmt: skip
        baseline = resident_mb(proc.pid, "VmRSS")

        def segment(_):
            return httpx.post(f"{url}/v1/segment", content=data,
                              headers={"content-type": "image/jpeg"}, timeout=120)  # fmt: skip

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(segment, range(4)))
        assert [a.status_code for a in answers] == [200] * 4
        peak = resident_mb(proc.pid, "VmHWM")
        assert peak - baseline < budget_mb, (peak, baseline)
    finally:
        stop(proc)


def test_answers_held_for_clients_that_never_read_stay_in_the_budget(model_path):
    # Forty clients ask for a 4096×4096 label map as .npy (16.8 MB each, far more than the
    # socket buffers take) and never read it. The bodies count in the budget until sent, so
    # resident memory stays within it, and when the clients go the budget is free again.
    budget_mb = 400
    url, proc = start(model_path, memory_budget_mb=budget_mb, request_timeout_s=3)
    try:
        big = np.zeros((4096, 4096, 3), np.uint8)
        big[::64] = 200
        buf = io.BytesIO()
        Image.fromarray(big).save(buf, "JPEG", quality=80)
        body = buf.getvalue()
        request = (
            f"POST /v1/segment?size=input&format=npy HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        httpx.post(f"{url}/v1/segment", content=photo(1),
                   headers={"content-type": "image/jpeg"}, timeout=30)  # fmt: skip
        baseline = resident_mb(proc.pid, "VmRSS")
        readers = []
        host, port = url.removeprefix("http://").split(":")
        for _ in range(40):
            sock = socket.socket()
            # A small receive window, set before connecting so that the kernel cannot take
            # the answer off the server's hands: the client that never reads.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect((host, int(port)))
            sock.sendall(request)
            readers.append(sock)
        time.sleep(12)  # every request has been answered, refused, or is waiting for the budget
        held = budget_used(url)
        assert held >= 2 * 4096 * 4096  # unsent answers are counted (they were not)
        assert held <= budget_mb << 20
        peak = resident_mb(proc.pid, "VmHWM")
        assert peak - baseline < budget_mb, (peak, baseline)
        for sock in readers:
            sock.close()
        deadline = time.time() + 10
        while budget_used(url) and time.time() < deadline:
            time.sleep(0.2)
        assert budget_used(url) == 0  # the abandoned answers gave their share back
        time.sleep(0.5)  # malloc_trim runs in a thread once the budget is empty
        after = resident_mb(proc.pid, "VmRSS")
        assert after - baseline < 0.5 * (peak - baseline) + 64, (baseline, peak, after)
        ok = httpx.post(f"{url}/v1/segment", content=photo(1),
                        headers={"content-type": "image/jpeg"}, timeout=30)  # fmt: skip
        assert ok.status_code == 200
    finally:
        stop(proc)


def test_an_oversized_chunked_upload_gets_413_and_the_connection_closes(model_path):
    url, proc = start(model_path, max_upload_bytes=100_000, body_timeout_s=2)
    try:
        sock = raw(url)
        sock.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
        chunk = b"\0" * 16_384
        with contextlib.suppress(OSError):  # the server may close while the rest is on its way
            for _ in range(16):  # 256 KB against a 100 KB limit
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        answer = read_answer(sock, timeout=6)  # until the server closes, or 6 s
        assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()
        assert b"408" not in answer  # no second, unsolicited answer on the same connection
    finally:
        stop(proc)


def test_a_malformed_chunked_body_is_one_400_for_the_request_not_a_client_abort(model_path):
    url, proc = start(model_path)
    try:
        sock = raw(url)
        sock.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n"
                     b"10\r\n0123456789abcdef\r\nzz\r\n")  # fmt: skip
        answer = read_answer(sock, timeout=6)
        assert answer.startswith(b"HTTP/1.1 400") and b"malformed request body" in answer
        time.sleep(0.5)  # the application finishes its side after the connection closed
        assert counted(url, 400, "/v1/segment") == 1
        assert counted(url, 400, "connection") == 0 and counted(url, 499) == 0
    finally:
        log = stop(proc)
    assert "client closed" not in log
