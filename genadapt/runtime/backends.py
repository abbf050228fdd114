"""The runtime backends: each one's name, the files it runs, whether this machine has it, and
how it loads a file. `load_segmenter`, the CLIs' `--backend` choices and the benchmarks read
this table, so a new backend is one entry here and its own module."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genadapt.checkpoint import load_checkpoint
from genadapt.errors import GenadaptError
from genadapt.runtime.base import Segmenter
from genadapt.runtime.options import RuntimeOptions
from genadapt.runtime.ort_providers import ort_available, ort_has_cuda

log = logging.getLogger(__name__)

ENGINE_SUFFIXES = (".engine", ".plan")
CHECKPOINT_SUFFIXES = (".pt", ".pth")


@dataclass(frozen=True)
class Backend:
    name: str
    suffixes: tuple[str, ...]  # the files it runs
    available: Callable[[], bool]  # installed here (a GPU is checked when loading)
    load: Callable[[Path, RuntimeOptions, bool], Segmenter]  # (file, options, on CUDA)
    summary: str


def _load_torch(path: Path, options: RuntimeOptions, cuda: bool) -> Segmenter:
    from genadapt.runtime.torch_backend import TorchSegmenter

    return TorchSegmenter.from_checkpoint(
        load_checkpoint(path),
        "cuda" if cuda else "cpu",
        precision=options.precision,
        upsample=options.upsample,
        compile_mode=options.compile,
    )


def _load_onnxruntime(path: Path, options: RuntimeOptions, cuda: bool) -> Segmenter:
    from genadapt.runtime.onnx_backend import OnnxSegmenter

    device = _ort_device(options.device, cuda)
    if path.suffix in CHECKPOINT_SUFFIXES:  # exported in memory, in a second or two
        return OnnxSegmenter.from_checkpoint(load_checkpoint(path), device, options.upsample)
    return OnnxSegmenter.from_file(path, device, options=options)


def _load_tensorrt(path: Path, options: RuntimeOptions, cuda: bool) -> Segmenter:
    if path.suffix in ENGINE_SUFFIXES:
        from genadapt.runtime.tensorrt_backend import TensorRTSegmenter

        return TensorRTSegmenter.from_file(path)
    from genadapt.runtime.onnx_backend import OnnxSegmenter  # ONNX Runtime's TensorRT provider

    return OnnxSegmenter.from_file(path, "tensorrt", options=options)


def _tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return ort_available() and "TensorrtExecutionProvider" in _ort_providers()
    return True


def _ort_providers() -> list[str]:
    import onnxruntime

    return onnxruntime.get_available_providers()


BACKENDS: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        Backend("torch", CHECKPOINT_SUFFIXES, lambda: True, _load_torch,
                "PyTorch: a checkpoint, on the CPU or on CUDA (fp16, CUDA graphs)"),
        Backend("onnxruntime", (".onnx", *CHECKPOINT_SUFFIXES), ort_available, _load_onnxruntime,
                "ONNX Runtime: an exported .onnx, or a checkpoint exported in memory"),
        Backend("tensorrt", (*ENGINE_SUFFIXES, ".onnx"), _tensorrt_available, _load_tensorrt,
                "TensorRT: an engine, or an .onnx through ONNX Runtime's TensorRT provider"),
    )
}  # fmt: skip


def backend_names() -> tuple[str, ...]:
    """What `--backend` accepts: auto, then every registered backend."""
    return ("auto", *BACKENDS)


def auto_backend(path: Path, cuda: bool) -> str:
    """The backend `auto` picks for a file: an engine runs on TensorRT, an ONNX file on ONNX
    Runtime, and a checkpoint on PyTorch on a GPU, on a CPU through ONNX Runtime when it is
    installed (about 1.5× faster there than PyTorch eager: 0.97 s vs 1.51 s at 1024×512 on a
    Zen 5 host, docs/performance.md)."""
    if path.suffix in ENGINE_SUFFIXES:
        return "tensorrt"
    if path.suffix == ".onnx":
        return "onnxruntime"
    return "torch" if cuda or not ort_available() else "onnxruntime"


def backend_for(path: Path, name: str, cuda: bool) -> Backend:
    """The registered backend that runs `path` when `name` is asked for; a clear error when
    it cannot run that kind of file."""
    backend = BACKENDS[auto_backend(path, cuda) if name == "auto" else name]
    if path.suffix not in backend.suffixes:
        runs = [b.name for b in BACKENDS.values() if path.suffix in b.suffixes]
        hint = (
            "export the checkpoint first (genadapt-export --tensorrt)"
            if name == "tensorrt"
            else f"use --backend {' or '.join(runs)}"
            if runs
            else "give a checkpoint (.pt), an .onnx or an engine"
        )
        raise GenadaptError(
            f"{path.name} is {_kind(path)}, which {backend.name} does not run: {hint}"
        )
    return backend


def _kind(path: Path) -> str:
    if path.suffix in ENGINE_SUFFIXES:
        return "a TensorRT engine"
    if path.suffix == ".onnx":
        return "an ONNX file"
    return "a checkpoint" if path.suffix in CHECKPOINT_SUFFIXES else f"a {path.suffix} file"


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
