"""Which ONNX Runtime is installed, and the execution providers (with their options) to ask for.

Kept apart from the backend so that the choices can be tested on a machine without a GPU: every
function here takes what it needs and returns plain lists and dicts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from genadapt.errors import GenadaptError

log = logging.getLogger(__name__)
ORT_DEVICES = ("cpu", "cuda", "tensorrt")
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")
_warned_both = False


def installed_onnxruntime_distributions() -> list[str]:
    """The ONNX Runtime distributions pip installed here (they share the import name)."""
    found = []
    for name in ORT_DISTRIBUTIONS:
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def both_installed_message(found: list[str]) -> str | None:
    if len(found) < 2:
        return None
    return (
        "both onnxruntime and onnxruntime-gpu are installed; they share one import name and the "
        "CPU build can hide the CUDA providers. Keep exactly one: pip uninstall -y onnxruntime "
        "onnxruntime-gpu && pip install 'genadapt[gpu]' (or 'genadapt[cpu]')"
    )


def import_onnxruntime():
    """onnxruntime, with a clear error when it is missing and a warning when it is doubled."""
    global _warned_both
    try:
        import onnxruntime
    except ImportError:
        raise GenadaptError(
            "the onnxruntime backend needs ONNX Runtime: pip install 'genadapt[cpu]' (CPU) or "
            "'genadapt[gpu]' (CUDA and TensorRT providers)"
        ) from None
    if not _warned_both and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        # Both installed and no CUDA provider: the CPU build shadows the GPU one. (Both with
        # the provider is fine: onnxruntime-gpu first on the path, as the GPU check installs it.)
        message = both_installed_message(installed_onnxruntime_distributions())
        if message:
            _warned_both = True
            log.warning(message)
    return onnxruntime


def ort_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def ort_has_cuda() -> bool:
    return (
        ort_available()
        and "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()
    )


def default_cache_dir() -> Path:
    """Where engines built at run time go: $GENADAPT_CACHE_DIR, else the user's cache folder.

    Never beside the model: a served model is usually mounted read-only."""
    explicit = os.environ.get("GENADAPT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genadapt"


@dataclass(frozen=True)
class TensorrtProfile:
    """One optimization profile over batch 1…max_batch for the ONNX Runtime TensorRT provider:
    without one, every new batch size rebuilds the engine (minutes) inside a request."""

    input_name: str
    item_shape: tuple[int, ...]  # the input's shape without the batch dimension
    max_batch: int
    opt_batch: int = 1

    def shapes(self, batch: int) -> str:
        return f"{self.input_name}:" + "x".join(str(d) for d in (batch, *self.item_shape))


def tensorrt_options(
    profile: TensorrtProfile, cache_dir: Path, fp16: bool, workspace_gib: float = 4.0
) -> dict[str, object]:
    """Options of the TensorRT execution provider (names from the ONNX Runtime documentation)."""
    return {
        "trt_fp16_enable": fp16,
        "trt_max_workspace_size": int(workspace_gib * (1 << 30)),
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache_dir),
        "trt_profile_min_shapes": profile.shapes(1),
        "trt_profile_opt_shapes": profile.shapes(min(profile.opt_batch, profile.max_batch)),
        "trt_profile_max_shapes": profile.shapes(profile.max_batch),
    }


def cuda_options(tf32: bool | None = True, nhwc: bool = False) -> dict[str, object]:
    """Options of the CUDA execution provider. `use_tf32` defaults to on in ONNX Runtime, so a
    strict fp32 measurement must turn it off (False). For an fp16 graph pass None, which leaves
    it unset: with use_tf32=0 ONNX Runtime's cuDNN path drops the tensor-core engines whatever
    the data type (fp16 measured 20 ms against 1.95 ms on an H200). `prefer_nhwc` runs
    convolutions channels-last, the layout Hopper's tensor cores want for fp16."""
    options: dict[str, object] = {} if tf32 is None else {"use_tf32": int(tf32)}
    if nhwc:
        options["prefer_nhwc"] = 1
    return options


def choose_providers(
    device: str,
    available: list[str],
    *,
    tensorrt: dict[str, object] | None = None,
    tf32: bool | None = True,
    nhwc: bool = False,
) -> list:
    """Execution providers for `device` ('cpu', 'cuda' or 'tensorrt'), best first, each GPU
    provider with its options; a clear error when the installed ONNX Runtime lacks it."""
    if device not in ORT_DEVICES:
        raise GenadaptError(f"ONNX Runtime device must be one of {ORT_DEVICES}, got {device!r}")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    wanted = "TensorrtExecutionProvider" if device == "tensorrt" else "CUDAExecutionProvider"
    if wanted not in available:
        hint = both_installed_message(installed_onnxruntime_distributions()) or (
            "install onnxruntime-gpu (pip install 'genadapt[gpu]') on a CUDA machine"
        )
        raise GenadaptError(f"{wanted} is not available (ONNX Runtime has {available}); {hint}")
    providers: list = []
    if device == "tensorrt":
        providers.append(("TensorrtExecutionProvider", tensorrt or {}))
    return [*providers, ("CUDAExecutionProvider", cuda_options(tf32, nhwc)), "CPUExecutionProvider"]
