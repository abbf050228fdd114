"""`RuntimeOptions`: how a model is run, apart from what it is (its `ModelSpec`).

Every command that runs a model (predict, eval, serve, the benchmarks) turns its flags or
settings into one of these and hands it to `load_segmenter`; the names and choices here are
the ones the CLIs offer (`genadapt.cli.add_runtime_arguments`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from genadapt.errors import GenadaptError
from genadapt.imaging import UPSAMPLE_MODES, Upsample
from genadapt.spec import Precision, check_precision

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[Device, ...] = get_args(Device)
# What a GPU computes in; a CPU runs fp32, or the INT8 an artifact was quantized to.
GPU_PRECISIONS: tuple[Precision, ...] = ("fp16", "fp32")
# torch.compile's modes (PyTorch backend): default, or the ones that also capture CUDA graphs.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class RuntimeOptions:
    backend: str = "auto"  # "auto" or a name in genadapt.runtime.backends.BACKENDS
    device: Device = "auto"  # cuda is a demand: no GPU is an error, not a CPU fallback
    precision: Precision = "fp16"  # on a GPU (PyTorch, ONNX Runtime's TensorRT provider)
    upsample: Upsample = "bilinear"  # logits → output size, for a checkpoint run here
    max_batch: int = 8  # the largest batch an engine built at load time takes
    cache_dir: Path | None = None  # engines built at load time (default ~/.cache/genadapt)
    compile: str | None = None  # torch.compile mode for the PyTorch backend (None: eager)

    def __post_init__(self) -> None:
        from genadapt.runtime.backends import backend_names  # the registry imports this module

        if self.backend not in backend_names():
            raise GenadaptError(f"backend must be one of {backend_names()}, got {self.backend!r}")
        if self.device not in DEVICES:
            raise GenadaptError(f"device must be one of {DEVICES}, got {self.device!r}")
        check_precision(self.precision, GPU_PRECISIONS, "precision on a GPU")
        if self.upsample not in UPSAMPLE_MODES:
            raise GenadaptError(f"upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise GenadaptError(f"compile must be one of {COMPILE_MODES}, got {self.compile!r}")
        if self.max_batch < 1:
            raise GenadaptError(f"max_batch must be at least 1, got {self.max_batch}")

    @property
    def fp16(self) -> bool:
        return self.precision == "fp16"
