"""The `Segmenter` interface: RGB images in, uint8 class-id maps out, whatever runs the network."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from genadapt.imaging import resize_rgb
from genadapt.spec import ModelSpec


class Segmenter(ABC):
    """Resize to the network size, run F+C, upsample ×`spec.output_scale`, argmax.

    Backends implement `run` on a uint8 batch already at the network size; `segment` accepts
    images of any size. `spec` (a `ModelSpec`) says what the network is and how it is run.
    """

    backend: str = "?"
    device: str = "cpu"
    file: str | None = None  # the artifact run, for a backend that runs an exported file
    sha256: str | None = None  # its hash, verified against model.json when it was loaded

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def set_output_scale(self, scale: int) -> None:
        """Label maps at `scale`× the network size from now on (the paper's is 2)."""
        self.spec = self.spec.replace(output_scale=scale)

    def segment(
        self, images: list[np.ndarray], output_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """RGB uint8 images (any sizes) → uint8 class ids (N, H, W) at `output_size` = (W, H)."""
        size = self.spec.input_size
        batch = np.stack([resize_rgb(np.asarray(img), size) for img in images])
        return self.run(batch, output_size or self.spec.output_size)

    def warmup_batch_sizes(self, max_batch: int) -> list[int]:
        """Batch sizes to run once before serving. On a GPU every size up to `max_batch`: the
        first run of a shape captures a CUDA graph, picks cuDNN algorithms or builds an engine
        profile, which must not happen inside a timed request. On a CPU nothing is shape-bound
        and one image suffices (a batch of 8 would cost seconds of start-up for nothing)."""
        return list(range(1, max_batch + 1)) if self.device != "cpu" else [1]

    @abstractmethod
    def run(self, batch: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
        """uint8 (N, H, W, 3) at the network size → uint8 (N, out_H, out_W)."""

    def describe(self) -> dict:
        return {
            "backend": self.backend,
            "device": self.device,
            "precision": self.spec.precision,
            "input_size": list(self.spec.input_size),
            "output_size": list(self.spec.output_size),
            "upsample": self.spec.upsample,
            **({"file": self.file} if self.file else {}),
        }
