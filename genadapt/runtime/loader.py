"""`load_segmenter(path, options)`: a checkpoint (.pt), an ONNX file (.onnx), an engine
(.engine / .plan) or an export folder, each run by the backend the registry names for it;
`auto` picks the fastest available, and in an export folder the fastest artifact that suits
this machine."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from genadapt.errors import GenadaptError
from genadapt.runtime.backends import backend_for
from genadapt.runtime.base import Segmenter
from genadapt.runtime.options import RuntimeOptions
from genadapt.sidecar import SIDECAR_NAME, Artifact, check_engine_compatible, load_sidecar

log = logging.getLogger(__name__)


def load_segmenter(path: str | Path, options: RuntimeOptions | None = None) -> Segmenter:
    """The Segmenter for a model file (.pt checkpoint, .onnx, .engine/.plan) or export folder,
    run as `options` say (defaults: `RuntimeOptions()`).

    The backend comes from the registry (`genadapt.runtime.backends`): `auto` picks by the
    file and the machine (`auto_backend`), and in an export folder the artifact that suits this
    machine (`choose_in_export`). `device` cuda is a demand: it fails rather than fall back to
    the CPU. `precision`, `max_batch` and `cache_dir` shape what is built for the GPU at load
    time (ONNX Runtime's TensorRT provider).
    """
    options = options or RuntimeOptions()
    path = Path(path)
    if options.device == "cuda" and not torch.cuda.is_available():
        raise GenadaptError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    cuda = torch.cuda.is_available() if options.device == "auto" else options.device == "cuda"
    if path.is_dir():
        path = choose_in_export(path, options.backend, cuda)
    if not path.is_file():
        raise GenadaptError(f"model not found: {path}")
    backend = backend_for(path, options.backend, cuda)
    if not backend.available():
        raise GenadaptError(f"{backend.name} is not installed here ({backend.summary})")
    return backend.load(path, options, cuda)


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
