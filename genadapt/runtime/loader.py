"""`load_segmenter(path, backend)`: a checkpoint (.pt), an ONNX file (.onnx) or an engine
(.engine / .plan), each run by what can run it; `auto` picks the fastest available."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from genadapt.checkpoint import load_checkpoint
from genadapt.errors import GenadaptError
from genadapt.imaging import Upsample
from genadapt.runtime.base import Segmenter
from genadapt.runtime.ort_providers import ort_available, ort_has_cuda

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")
ENGINE_SUFFIXES = (".engine", ".plan")


def load_segmenter(
    path: str | Path,
    backend: str = "auto",
    device: str = "auto",
    upsample: Upsample = "bilinear",
    *,
    max_batch: int = 8,
    fp16: bool = True,
    cache_dir: Path | None = None,
) -> Segmenter:
    """The Segmenter for a model file.

    auto: an engine runs on TensorRT; an ONNX file on ONNX Runtime (CUDA when available); a
    checkpoint on PyTorch CUDA (fp16, CUDA graphs) on a GPU, and on a CPU through ONNX Runtime,
    about 1.5× faster there than PyTorch eager (DESIGN.md: 0.97 s vs 1.51 s at 1024×512).
    `device` 'cuda' is a demand: it fails rather than fall back to the CPU. `max_batch` and
    `fp16` shape what is built for the GPU at load time (ONNX Runtime's TensorRT provider);
    `cache_dir` holds what it builds.
    """
    path = Path(path)
    if backend not in BACKENDS:
        raise GenadaptError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not path.is_file():
        raise GenadaptError(f"model not found: {path}")
    if device not in DEVICES:
        raise GenadaptError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise GenadaptError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if path.suffix in ENGINE_SUFFIXES:
        if backend not in ("auto", "tensorrt"):
            raise GenadaptError(f"{path.name} is a TensorRT engine: use --backend tensorrt")
        from genadapt.runtime.tensorrt_backend import TensorRTSegmenter

        return TensorRTSegmenter.from_file(path)
    if path.suffix == ".onnx":
        if backend not in ("auto", "onnxruntime", "tensorrt"):
            raise GenadaptError(f"{path.name} is an ONNX file: use --backend onnxruntime")
        from genadapt.runtime.onnx_backend import OnnxSegmenter

        ort_device = "tensorrt" if backend == "tensorrt" else _ort_device(device, cuda)
        return OnnxSegmenter.from_file(
            path, ort_device, fp16=fp16, max_batch=max_batch, cache_dir=cache_dir
        )
    checkpoint = load_checkpoint(path)
    if backend == "tensorrt":
        raise GenadaptError("export the checkpoint first (genadapt-export --tensorrt)")
    if backend == "torch" or (backend == "auto" and (cuda or not ort_available())):
        from genadapt.runtime.torch_backend import TorchSegmenter

        return TorchSegmenter.from_checkpoint(
            checkpoint, "cuda" if cuda else "cpu", fp16=fp16, upsample=upsample
        )
    from genadapt.runtime.onnx_backend import OnnxSegmenter

    return OnnxSegmenter.from_checkpoint(checkpoint, _ort_device(device, cuda), upsample)


def _ort_device(device: str, cuda: bool) -> str:
    """ONNX Runtime's device: CUDA when asked for (an error if it cannot be had), or on `auto`
    when both a GPU and onnxruntime-gpu are there; a GPU left unused is said out loud."""
    if device == "cuda":
        return "cuda"
    if cuda and not ort_has_cuda():
        log.warning(
            "a CUDA GPU is present but ONNX Runtime has no CUDAExecutionProvider: running on "
            "the CPU. Install onnxruntime-gpu alone (pip install 'genadapt[gpu]')"
        )
    return "cuda" if cuda and ort_has_cuda() else "cpu"
