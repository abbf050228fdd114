"""`load_segmenter(path, backend)`: a checkpoint (.pt), an ONNX file (.onnx), an engine
(.engine / .plan) or an export folder, each run by what can run it; `auto` picks the fastest
available, and in an export folder the fastest artifact that suits this machine."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from genadapt.checkpoint import load_checkpoint
from genadapt.errors import GenadaptError
from genadapt.imaging import Upsample
from genadapt.runtime.base import Segmenter
from genadapt.runtime.ort_providers import ort_available, ort_has_cuda
from genadapt.sidecar import SIDECAR_NAME, Artifact, check_engine_compatible, load_sidecar

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
    about 1.5× faster there than PyTorch eager (0.97 s vs 1.51 s at 1024×512 on a Zen 5
    host, README Performance).
    `device` 'cuda' is a demand: it fails rather than fall back to the CPU. `max_batch` and
    `fp16` shape what is built for the GPU at load time (ONNX Runtime's TensorRT provider);
    `cache_dir` holds what it builds.
    """
    path = Path(path)
    if backend not in BACKENDS:
        raise GenadaptError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if device not in DEVICES:
        raise GenadaptError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise GenadaptError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if path.is_dir():
        path = choose_in_export(path, backend, cuda)
    if not path.is_file():
        raise GenadaptError(f"model not found: {path}")
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


def choose_in_export(folder: Path, backend: str, cuda: bool) -> Path:
    """The artifact of an export folder to run here, said in the log: on a GPU a TensorRT
    engine built for it, on a CPU the INT8 graph if it passed its gate; else the fp32 labels
    graph (or the logits one)."""
    sidecar = load_sidecar(folder / SIDECAR_NAME)
    artifacts = sidecar.artifacts
    reasons = []
    engine = artifacts.get("model.engine")
    if cuda and engine is not None and backend in ("auto", "tensorrt"):
        problem = _engine_problem(engine)
        if problem is None:
            return _chosen(folder / engine.file, "a TensorRT engine built for this GPU")
        reasons.append(f"model.engine skipped: {problem}")
    int8 = artifacts.get("model.labels.int8.onnx")
    if not cuda and int8 is not None and backend in ("auto", "onnxruntime"):
        if int8.parity.get("passed"):
            agreement = 100 * int8.parity["label_agreement"]
            return _chosen(folder / int8.file, f"INT8 on a CPU; its gate: {agreement:.2f}% agree")
        reasons.append("model.labels.int8.onnx skipped: it did not pass its gate")
    for name in ("model.labels.onnx", "model.logits.onnx"):
        if name in artifacts:
            return _chosen(folder / name, "; ".join(reasons) or "fp32 ONNX")
    raise GenadaptError(f"{folder} holds no ONNX file to run ({sorted(artifacts)})")


def _engine_problem(engine: Artifact) -> str | None:
    try:
        import tensorrt
    except ImportError:
        return "TensorRT is not installed"
    try:
        check_engine_compatible(engine, tensorrt.__version__, torch.cuda.get_device_name())
    except GenadaptError as exc:
        return str(exc)
    return None


def _chosen(path: Path, why: str) -> Path:
    log.info("running %s (%s)", path, why)
    return path


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
