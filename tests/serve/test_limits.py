"""The memory budget, the operator's endpoints behind the key, and a model failure as a JSON
500 that /metrics counts."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from genadapt.runtime import RuntimeOptions, load_segmenter
from genadapt.serve.budget import BudgetTimeoutError, MemoryBudget, OverBudgetError
from genadapt.serve.outputs import Decoded
from genadapt.spec import ModelSpec

from serve_helpers import wait_ready


def test_the_budget_never_holds_more_than_its_limit():
    async def scenario():
        budget = MemoryBudget(100)
        running = []

        async def job(nbytes: int):
            async with budget.hold(nbytes, timeout_s=5):
                running.append(budget.used)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(job(n) for n in [60, 60, 30, 30, 30, 100, 10] * 3))
        return budget, running

    budget, running = asyncio.run(scenario())
    assert budget.peak <= 100 and max(running) <= 100 and budget.used == 0
    assert budget.peak >= 90  # it did run jobs side by side when they fitted


def test_the_budget_refuses_what_never_fits_and_times_out_what_waits_too_long():
    async def scenario():
        budget = MemoryBudget(100)
        with pytest.raises(OverBudgetError, match="more than the service's memory budget"):
            async with budget.hold(101, timeout_s=1):
                pass
        async with budget.hold(80, timeout_s=1):
            with pytest.raises(BudgetTimeoutError):
                async with budget.hold(30, timeout_s=0.05):
                    pass
        return budget

    assert asyncio.run(scenario()).used == 0


def test_memory_goes_back_to_the_system_after_many_small_holds_as_after_one_large(monkeypatch):
    import genadapt.serve.budget as budget_module

    trims = []
    monkeypatch.setattr(budget_module, "release_free_memory", lambda: trims.append(1))

    async def scenario():
        budget = MemoryBudget(1 << 30)
        holds = [4 << 20] * 40  # forty 4 MB answers to slow readers: 160 MB in all
        for nbytes in holds:
            await budget.acquire(nbytes, timeout_s=1)
        for nbytes in holds[:-1]:
            await budget.release(nbytes)
        assert trims == []  # never while anything is still held
        await budget.release(holds[-1])
        await budget.acquire(1 << 20, timeout_s=1)
        await budget.release(1 << 20)  # a small request after it: no trim of its own

    asyncio.run(scenario())
    assert trims == [1]


def test_size_input_is_capped_keeping_the_aspect_ratio():
    from genadapt.labels import CITYSCAPES19

    spec = ModelSpec(CITYSCAPES19, (64, 32))
    decoded = Decoded(np.zeros((32, 64, 3), np.uint8), None, (6000, 3000))
    assert decoded.output_size(spec, "native", 1000) == (128, 64)
    assert decoded.output_size(spec, "input", 10**8) == (6000, 3000)
    w, h = decoded.output_size(spec, "input", 2_000_000)
    assert w * h <= 2_000_000 and abs(w / h - 2) < 0.01


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 30, 3), 120, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_ops_endpoints_need_the_key_only_when_asked(make_client):
    open_ops = make_client(api_key="s3cret")
    wait_ready(open_ops)
    assert open_ops.get("/metrics").status_code == 200
    assert open_ops.get("/openapi.json").status_code == 200
    guarded = make_client(api_key="s3cret", protect_ops=True)
    wait_ready(guarded)
    for path in ("/metrics", "/openapi.json", "/docs", "/redoc"):
        refused = guarded.get(path)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        assert guarded.get(path, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert guarded.get("/healthz").status_code == 200  # probes stay open


def test_a_model_failure_is_a_json_500_and_counted(make_client, model_path):
    segmenter = load_segmenter(model_path, RuntimeOptions(backend="torch"))
    warmed = []

    def failing_run(batch, output_size):
        if warmed:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        warmed.append(True)
        return np.zeros((len(batch), *output_size[::-1]), np.uint8)

    segmenter.run = failing_run
    client = make_client(load=lambda: segmenter)
    wait_ready(client)
    answer = client.post("/v1/segment", content=jpeg(), headers={"content-type": "image/jpeg"})
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "inference_failed"
    metrics = client.get("/metrics").text
    assert 'genadapt_requests_total{path="/v1/segment",status="500"} 1.0' in metrics


def test_a_bug_of_ours_is_still_a_json_500_and_counted(model_path, monkeypatch):
    from fastapi.testclient import TestClient

    from genadapt.serve import pipeline
    from genadapt.serve.app import create_app
    from genadapt.serve.settings import ServeSettings

    def broken(*args):
        raise KeyError("a bug")

    monkeypatch.setattr(pipeline, "decode_upload", broken)
    with TestClient(
        create_app(ServeSettings(model=str(model_path))), raise_server_exceptions=False
    ) as client:
        wait_ready(client)
        answer = client.post("/v1/segment", content=jpeg(), headers={"content-type": "image/jpeg"})
        assert answer.status_code == 500
        assert answer.json()["error"]["code"] == "internal_error"
        metrics = client.get("/metrics").text
    assert 'genadapt_requests_total{path="/v1/segment",status="500"} 1.0' in metrics
