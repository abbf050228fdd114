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


def test_a_compiled_network_gives_the_eager_labels(tmp_path):
    """torch.compile (Inductor, default mode) on the CPU: the same labels as eager."""
    import numpy as np

    from genadapt.runtime import TorchSegmenter

    from helpers import trained_like_checkpoint

    path = save_checkpoint(trained_like_checkpoint(), tmp_path / "c.pt")
    compiled = load_segmenter(path, RuntimeOptions(backend="torch", compile="default"))
    assert isinstance(compiled, TorchSegmenter) and compiled.compile_mode == "default"
    batch = np.random.default_rng(0).integers(0, 256, (2, 32, 64, 3), dtype=np.uint8)
    eager = load_segmenter(path, RuntimeOptions(backend="torch"))
    labels = compiled.run(batch, (128, 64))
    assert (labels == eager.run(batch, (128, 64))).mean() > 0.999
