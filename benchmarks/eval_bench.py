"""`genadapt-bench eval`: evaluation throughput on full-resolution labelled images, split into
loading, inference and scoring, with the same code genadapt-eval runs."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from genadapt.benchmarks.common import INT8
from genadapt.benchmarks.timing import environment, watching_the_machine
from genadapt.checkpoint import Checkpoint
from genadapt.datasets import SegmentationDataset
from genadapt.evaluate import evaluate
from genadapt.runtime import TorchSegmenter
from genadapt.runtime.onnx_backend import OnnxSegmenter
from genadapt.scenes.generate import generate_scenes


def run_eval(
    checkpoint: Checkpoint,
    device: str,
    backend: str,
    images: int,
    label_size: tuple[int, int] = (2048, 1024),
    workers: int = 2,
) -> dict:
    """Evaluate `images` generated scenes with labels at `label_size` on `backend` ('torch' or
    'onnxruntime') on `device`; seconds per stage and images per second."""
    with tempfile.TemporaryDirectory(prefix="genadapt-bench-eval-") as tmp:
        generate_scenes(
            Path(tmp), label_size, source=0, target_train=0, target_val=images, unseen=0, workers=2
        )
        dataset = SegmentationDataset(
            "cityscapes", Path(tmp) / "target", "val", label_space=checkpoint.spec.label_space
        )
        if backend == "torch":
            segmenter = TorchSegmenter.from_checkpoint(checkpoint, device)
        elif backend == INT8:
            from genadapt.benchmarks.int8 import int8_segmenter

            segmenter = int8_segmenter(checkpoint)
        else:
            segmenter = OnnxSegmenter.from_checkpoint(checkpoint, device)
        started = time.perf_counter()
        with watching_the_machine() as machine:  # loader workers are children: ours
            result = evaluate(segmenter, dataset, num_workers=workers, progress=False)
        wall = time.perf_counter() - started
    return {
        "environment": environment(device),
        "backend": backend,
        "segmenter": segmenter.describe(),  # the device and, for ONNX Runtime, its providers
        "images": result.images,
        "label_size": list(label_size),
        "network_size": list(checkpoint.spec.input_size),
        "wall_s": round(wall, 3),
        "images_per_s": round(result.images / wall, 3),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "machine": machine,
    }
