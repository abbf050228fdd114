"""The `Segmenter` interface: RGB images in, uint8 class-id maps out, whatever runs the network."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from genadapt.imaging import UPSAMPLE_MODES, Normalization, Upsample, resize_rgb
from genadapt.labels import LabelSpace


class Segmenter(ABC):
    """Resize to the network size, run F+C, upsample ×`output_scale`, argmax.

    Backends implement `run` on a uint8 batch already at the network size; `segment` accepts
    images of any size. `output_size` = (W, H) is 2× the network size by default, as in the paper.
    """

    backend: str = "?"
    precision: str = "fp32"
    device: str = "cpu"

    def __init__(
        self,
        label_space: LabelSpace,
        input_size: tuple[int, int],
        normalization: Normalization,
        upsample: Upsample = "bilinear",
        output_scale: int = 2,
    ) -> None:
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.label_space = label_space
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.normalization = normalization
        self.upsample: Upsample = upsample
        self.set_output_scale(output_scale)

    def set_output_scale(self, scale: int) -> None:
        """Label maps at `scale`× the network size from now on (the paper's is 2)."""
        self.output_scale = scale
        self.output_size = (self.input_size[0] * scale, self.input_size[1] * scale)

    def segment(
        self, images: list[np.ndarray], output_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """RGB uint8 images (any sizes) → uint8 class ids (N, H, W) at `output_size` = (W, H)."""
        batch = np.stack([resize_rgb(np.asarray(img), self.input_size) for img in images])
        return self.run(batch, output_size or self.output_size)

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
            "precision": self.precision,
            "input_size": list(self.input_size),
            "output_size": list(self.output_size),
            "upsample": self.upsample,
        }
