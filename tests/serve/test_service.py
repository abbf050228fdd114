import base64
import io
import json
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from genadapt.commands.predict import cli as predict_cli
from genadapt.imaging import nearest_labels, network_input
from genadapt.runtime import TorchSegmenter, load_segmenter
from genadapt.serve.outputs import run_lengths

from serve_helpers import SlowSegmenter, varied_checkpoint, wait_ready


def jpeg(w=160, h=90, seed=0, mode="RGB", **save) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.convert(mode).save(buf, format="JPEG", **save)
    return buf.getvalue()


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def post(client, data: bytes, content_type="image/jpeg", **params):
    return client.post("/v1/segment", content=data, headers={"content-type": content_type},
                       params=params)  # fmt: skip


def expected_labels(model_path, data: bytes) -> np.ndarray:
    """What every genadapt command computes for these bytes (see imaging.network_input)."""
    segmenter = load_segmenter(model_path)
    return segmenter.segment([network_input(data, segmenter.spec.input_size)])[0]


def test_health_ready_model_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    info = client.get("/v1/model").json()
    assert info["input_size"] == [64, 32] and info["output_size"] == [128, 64]
    assert info["classes"][13] == {"id": 13, "name": "car", "color": [0, 0, 142]}
    assert len(info["model_sha256"]) == 64 and info["backend"] == "onnxruntime"
    post(client, jpeg())
    text = client.get("/metrics").text
    for stage in ("inference", "decode", "encode", "queue_wait", "request"):
        assert f"genadapt_{stage}_seconds_bucket" in text
    assert "genadapt_queue_depth" in text
    assert 'genadapt_requests_total{path="/v1/segment",status="200"} 1.0' in text


def test_default_png_is_train_ids_at_twice_the_network_size(client, model_path):
    data = jpeg()
    response = post(client, data)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    labels = np.asarray(Image.open(io.BytesIO(response.content)))
    assert labels.shape == (64, 128) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, expected_labels(model_path, data))
    assert "inference;dur=" in response.headers["server-timing"]


def test_every_format_and_size(client, model_path):
    data = jpeg(150, 100)
    expected = expected_labels(model_path, data)
    color = post(client, data, format="color")
    assert np.asarray(Image.open(io.BytesIO(color.content))).shape == (64, 128, 3)
    over = post(client, data, format="overlay")
    assert over.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(over.content)).size == (128, 64)
    npy = np.load(io.BytesIO(post(client, data, format="npy").content))
    np.testing.assert_array_equal(npy, expected)
    body = post(client, data, format="json").json()
    assert (body["width"], body["height"]) == (128, 64)
    assert abs(sum(c["fraction"] for c in body["classes"]) - 1) < 1e-4
    for c in body["classes"]:  # the RLE decodes back to the class mask
        mask = np.repeat(np.arange(len(c["rle"])) % 2 == 1, c["rle"]).reshape(64, 128)
        np.testing.assert_array_equal(mask, expected == c["id"])
    at_input = post(client, data, size="input")
    assert Image.open(io.BytesIO(at_input.content)).size == (150, 100)
    # The one nearest-label rule of every runtime, not a second one of the service's own.
    at_input_labels = np.asarray(Image.open(io.BytesIO(at_input.content)))
    np.testing.assert_array_equal(at_input_labels, nearest_labels(expected[None], (150, 100))[0])
    with_overlay = post(client, data, format="json", overlay="true").json()
    assert len(with_overlay["overlay_jpeg_base64"]) > 100


def test_multipart_upload(client, model_path):
    data = jpeg(seed=3)
    response = client.post("/v1/segment", files={"file": ("x.jpg", data, "image/jpeg")})
    assert response.status_code == 200
    labels = np.asarray(Image.open(io.BytesIO(response.content)))
    np.testing.assert_array_equal(labels, expected_labels(model_path, data))


def header_bomb(width=20_000, height=20_000) -> bytes:
    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 99)) \
        + chunk(b"IEND", b"")  # fmt: skip


def exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return jpeg(120, 60, exif=exif.tobytes())


def scan_bomb(scans: int = 2000) -> bytes:
    """A progressive JPEG whose last scan repeats: decoding time grows with every scan."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buf, format="JPEG", progressive=True)
    data = buf.getvalue()
    last_scan, end = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    return data[:end] + data[last_scan:end] * scans + data[end:]


def bad_inputs():
    good_png = png(np.zeros((40, 40, 3), np.uint8))
    return [
        ("scan bomb", scan_bomb(), "image/jpeg", 422),
        ("truncated png", good_png[: len(good_png) // 2], "image/png", 422),
        ("random bytes", np.random.default_rng(0).bytes(5000), "image/jpeg", 422),
        ("zero bytes", b"", "image/png", 422),
        ("header bomb", header_bomb(), "image/png", 413),
        ("text", b"hello", "text/plain", 415),
        ("json", b"{}", "application/json", 415),
    ]


def odd_but_valid_inputs():
    gray16 = png((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16))
    return [
        ("1x1", png(np.zeros((1, 1, 3), np.uint8)), "image/png"),
        ("cmyk jpeg", jpeg(mode="CMYK"), "image/jpeg"),
        ("16-bit png", gray16, "image/png"),
        ("exif-rotated jpeg", exif_rotated(), "image/jpeg"),
    ]


@pytest.mark.parametrize("name,data,content_type,status", bad_inputs())
def test_bad_input_is_refused_and_the_next_request_succeeds(client, name, data, content_type,
                                                            status):  # fmt: skip
    response = post(client, data, content_type)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and error["message"] and error["code"]
    assert post(client, jpeg()).status_code == 200


@pytest.mark.parametrize("name,data,content_type", odd_but_valid_inputs())
def test_unusual_images_are_segmented(client, name, data, content_type):
    response = post(client, data, content_type, size="input")
    assert response.status_code == 200, response.text
    size = Image.open(io.BytesIO(response.content)).size
    assert size == Image.open(io.BytesIO(data)).size or name == "exif-rotated jpeg"
    if name == "exif-rotated jpeg":
        assert size == (60, 120)  # upright: rotated by its EXIF orientation


def test_upload_limit_is_enforced_while_reading(make_client):
    client = make_client(max_upload_bytes=10_000)
    wait_ready(client)

    def chunks():  # no Content-Length: the limit must apply as the bytes arrive
        for _ in range(100):
            yield b"\0" * 4096

    response = client.post("/v1/segment", content=chunks(), headers={"content-type": "image/png"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert response.headers["connection"] == "close"  # the unread rest must not stay queued
    big = post(client, b"\0" * 20_000, "image/png")
    assert big.status_code == 413 and big.headers["connection"] == "close"
    assert post(client, jpeg(40, 30)).status_code == 200


def test_memory_does_not_grow_with_bad_requests(client):
    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    for _ in range(5):  # warm every code path first
        for _, data, content_type, _ in bad_inputs():
            post(client, data, content_type)
    before = rss_mb()
    for _ in range(20):
        for _, data, content_type, _ in bad_inputs():
            post(client, data, content_type)
    assert rss_mb() - before < 40
    assert post(client, jpeg()).status_code == 200


def test_api_key(make_client):
    client = make_client(api_key="s3cret")
    wait_ready(client)
    assert post(client, jpeg()).status_code == 401
    assert client.get("/v1/model").status_code == 401
    ok = client.post("/v1/segment", content=jpeg(),
                     headers={"content-type": "image/jpeg", "x-api-key": "s3cret"})  # fmt: skip
    assert ok.status_code == 200
    bearer = client.get("/v1/model", headers={"authorization": "Bearer s3cret"})
    assert bearer.status_code == 200
    assert client.get("/healthz").status_code == 200  # probes need no key


def test_readiness_before_and_after_warm_up(make_client, model_path):
    gate = threading.Event()

    def slow_load():
        gate.wait(30)
        return load_segmenter(model_path)

    client = make_client(load=slow_load)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    loading = post(client, jpeg())
    assert loading.status_code == 503 and loading.headers["retry-after"] == "5"
    gate.set()
    wait_ready(client)
    assert post(client, jpeg()).status_code == 200


def test_failed_model_load_is_reported(make_client):
    def broken():
        raise ValueError("weights do not match")

    client = make_client(load=broken)
    time.sleep(0.2)
    response = client.get("/readyz")
    assert (
        response.status_code == 503
        and "weights do not match" in response.json()["error"]["message"]
    )


def test_concurrent_clients_get_the_labels_predict_writes(client, model_path, tmp_path):
    images = [jpeg(100 + 10 * i, 60 + 5 * i, seed=i) for i in range(8)]
    for i, data in enumerate(images):
        (tmp_path / f"img{i}.jpg").write_bytes(data)
    assert predict_cli([str(model_path), str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    expected = [np.asarray(Image.open(tmp_path / f"out/img{i}_labels.png")) for i in range(8)]

    def one(i):
        response = post(client, images[i % 8])
        return i % 8, response.status_code, response.content, response.headers["x-batch-size"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(32)))
    assert all(status == 200 for _, status, _, _ in results)
    for i, _, content, _ in results:
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(content))), expected[i])


def test_queue_full_and_timeout(make_client, model_path):
    gate = threading.Event()
    base = TorchSegmenter.from_checkpoint(varied_checkpoint())
    client = make_client(load=lambda: SlowSegmenter(base, gate), max_queue=2, max_batch=1,
                         request_timeout_s=1.0)  # fmt: skip
    wait_ready(client)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(post, client, jpeg()) for _ in range(6)]
        time.sleep(0.5)
        statuses = sorted(f.result().status_code for f in futures)
        gate.set()
    # One batch runs (stuck at the gate), two wait in the queue, the rest are turned away;
    # the stuck ones time out after 1 s.
    assert statuses.count(503) >= 3 and set(statuses) <= {503, 504, 200}
    busy = [f.result() for f in futures if f.result().status_code == 503]
    assert busy[0].headers["retry-after"] == "1" and busy[0].json()["error"]["code"] == "busy"
    assert 504 in statuses
    deadline = time.time() + 10  # the worker drains what is left, skipping timed-out jobs
    while (status := post(client, jpeg()).status_code) == 503 and time.time() < deadline:
        time.sleep(0.1)
    assert status == 200


def test_when_every_image_thread_is_held_requests_get_503_or_504_not_silence(
    make_client, monkeypatch
):
    import genadapt.serve.pipeline as pipeline

    gate, held = threading.Event(), threading.Event()
    real = pipeline.decode_upload

    def stuck_decode(*args):  # an upload that holds its thread (a slow decode)
        held.set()
        gate.wait(10)
        return real(*args)

    monkeypatch.setattr(pipeline, "decode_upload", stuck_decode)
    client = make_client(workers_io=1, max_queue=1, request_timeout_s=1.0)
    wait_ready(client)
    with ThreadPoolExecutor(3) as pool:
        holder = pool.submit(post, client, jpeg())
        assert held.wait(10)
        waiting = pool.submit(post, client, jpeg())  # queued for the one thread
        time.sleep(0.2)
        turned_away = post(client, jpeg())  # past max_queue waiting: at once
        assert turned_away.status_code == 503 and turned_away.headers["retry-after"] == "1"
        late = waiting.result(timeout=10)  # its work never started: dropped at the deadline
        assert late.status_code == 504 and "no image thread" in late.json()["error"]["message"]
        gate.set()
        assert holder.result(timeout=30).status_code == 200  # started work runs to its end
    monkeypatch.setattr(pipeline, "decode_upload", real)
    assert post(client, jpeg()).status_code == 200


def test_openapi_documents_every_status_with_its_own_errors(client):
    spec = client.get("/openapi.json").json()
    segment = spec["paths"]["/v1/segment"]["post"]
    assert {"image/png", "image/jpeg", "application/json", "application/x-npy"} <= set(
        segment["responses"]["200"]["content"])  # fmt: skip
    body_types = set(segment["requestBody"]["content"])
    assert {"multipart/form-data", "image/gif", "image/tiff", "image/webp"} <= body_types
    statuses = {"400", "401", "408", "413", "415", "422", "500", "503", "504"}
    assert statuses <= set(segment["responses"])
    for status in statuses:
        examples = segment["responses"][status]["content"]["application/json"]["examples"]
        for example in examples.values():
            assert example["value"]["error"]["status"] == int(status), (status, example)
    codes = {s: {e["value"]["error"]["code"] for e in segment["responses"][s]["content"][
        "application/json"]["examples"].values()} for s in statuses}  # fmt: skip
    assert codes["413"] == {"too_large", "too_many_pixels", "too_large_to_process"}
    assert "busy" in codes["503"] and codes["401"] == {"unauthorized"}
    format_help = next(p for p in segment["parameters"] if p["name"] == "format")["description"]
    assert "near-black" in format_help  # Try it out's png is train ids, not a picture


def test_a_bad_image_answer_matches_its_documented_example(client):
    answer = post(client, b"\xff\xd8\xff\xe0 not really a jpeg")
    documented = client.get("/openapi.json").json()["paths"]["/v1/segment"]["post"]
    examples = documented["responses"]["422"]["content"]["application/json"]["examples"]
    assert answer.status_code == 422
    documented_codes = {e["value"]["error"]["code"] for e in examples.values()}
    assert answer.json()["error"]["code"] in documented_codes


def test_head_works_wherever_get_does(client):
    for path in ("/", "/favicon.ico", "/healthz", "/readyz", "/docs", "/openapi.json"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
        if "content-length" in got.headers:
            assert head.headers["content-length"] == got.headers["content-length"], path
    assert client.head("/v1/segment").status_code == 405


def test_json_can_carry_the_photo_for_a_client_that_cannot_show_the_upload(client):
    tiff = io.BytesIO()
    Image.fromarray(np.full((40, 80, 3), (200, 30, 30), np.uint8)).save(tiff, format="TIFF")
    body = post(client, tiff.getvalue(), "image/tiff", format="json", photo="true",
                size="input").json()  # fmt: skip
    photo = Image.open(io.BytesIO(base64.b64decode(body["photo_jpeg_base64"])))
    assert photo.size == (body["width"], body["height"]) == (80, 40)
    assert np.abs(np.asarray(photo, np.int16) - (200, 30, 30)).max() < 12
    assert "photo_jpeg_base64" not in post(client, jpeg(), format="json").json()


def test_segment_bytes_answers_what_the_service_answers(client, model_path):
    from genadapt.serve.pipeline import SegmentPipeline, segment_bytes

    segmenter = load_segmenter(model_path)
    data = jpeg(300, 200, seed=4)
    for fmt in ("png", "color"):
        body, timings = segment_bytes(data, segmenter, SegmentPipeline(segmenter.spec, fmt))
        assert body == post(client, data, format=fmt).content
        assert set(timings) == {"decode", "network", "encode", "total"}
    summary, _ = segment_bytes(data, segmenter, SegmentPipeline(segmenter.spec, "json", "input"))
    served = post(client, data, format="json", size="input").json()
    assert summary == {k: v for k, v in served.items() if k != "timing_ms"}


def test_server_timing_reports_the_wait_for_an_image_thread_apart(client):
    import re

    answer = post(client, jpeg(), format="png")
    stages = dict(re.findall(r"(\w+);dur=([\d.]+)", answer.headers["server-timing"]))
    assert {"decode", "io_wait", "queue", "inference", "encode", "total"} == set(stages)
    parts = sum(float(stages[k]) for k in ("decode", "io_wait", "queue", "inference", "encode"))
    assert parts <= float(stages["total"]) + 0.05  # apart, not counted twice
    metrics = client.get("/metrics").text
    assert "genadapt_io_wait_seconds_count 1.0" in metrics


def test_run_lengths():
    mask = np.array([[0, 1, 1], [1, 0, 0]], bool)
    assert run_lengths(mask) == [1, 3, 2]
    assert run_lengths(np.ones(3, bool)) == [0, 3]
    assert json.dumps(run_lengths(mask))


def test_output_scale_setting(make_client):
    client = make_client(output_scale=1)
    wait_ready(client)
    response = post(client, jpeg())
    assert Image.open(io.BytesIO(response.content)).size == (64, 32)
    assert client.get("/v1/model").json()["output_size"] == [64, 32]
