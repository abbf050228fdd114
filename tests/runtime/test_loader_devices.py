"""Asking for a device is a demand: never a quiet fall-back to the CPU."""

from __future__ import annotations

import pytest
import torch

from genadapt.checkpoint import save_checkpoint
from genadapt.errors import GenadaptError
from genadapt.runtime import RuntimeOptions, load_segmenter

from helpers import make_checkpoint


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_cuda_without_a_gpu_is_refused(tmp_path):
    path = save_checkpoint(make_checkpoint(), tmp_path / "c.pt")
    with pytest.raises(GenadaptError, match="no CUDA GPU"):
        load_segmenter(path, RuntimeOptions(device="cuda"))
    with pytest.raises(GenadaptError, match="device must be one of"):
        load_segmenter(path, RuntimeOptions(device="gpu"))


def test_warm_up_covers_every_batch_size_on_a_gpu_and_one_on_a_cpu(tmp_path):
    segmenter = load_segmenter(
        save_checkpoint(make_checkpoint(), tmp_path / "c.pt"), RuntimeOptions(backend="torch")
    )
    assert segmenter.warmup_batch_sizes(4) == [1]
    segmenter.device = "cuda:0"
    assert segmenter.warmup_batch_sizes(4) == [1, 2, 3, 4]
