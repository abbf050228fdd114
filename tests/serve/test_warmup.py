"""The service warms up every batch size the backend needs before it says ready."""

from __future__ import annotations

import time

import pytest
import torch

from genadapt.runtime import RuntimeOptions, load_segmenter

from serve_helpers import wait_ready


def test_warm_up_runs_each_batch_size_before_ready(make_client, model_path):
    seen: list[int] = []
    segmenter = load_segmenter(model_path, RuntimeOptions(backend="torch"))
    segmenter.device = "cuda:0"  # pretend: a GPU backend warms up 1…max_batch
    run = segmenter.run

    def recording_run(batch, output_size):
        seen.append(len(batch))
        return run(batch, output_size)

    segmenter.run = recording_run
    client = make_client(load=lambda: segmenter, max_batch=3)
    wait_ready(client)
    assert seen == [1, 2, 3]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_a_service_told_to_use_cuda_never_serves_from_the_cpu(make_client):
    client = make_client(device="cuda")
    deadline = time.time() + 30
    while client.get("/readyz").json()["error"]["code"] == "loading" and time.time() < deadline:
        time.sleep(0.05)
    response = client.get("/readyz")
    error = response.json()["error"]
    assert response.status_code == 503 and error["code"] == "model_failed"
    assert "no CUDA GPU" in error["message"]
