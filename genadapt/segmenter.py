"""`Segmenter`: RGB images in, uint8 class-id maps out, whatever runs the network."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from genadapt.checkpoint import Checkpoint, load_checkpoint
from genadapt.imaging import (
    IMAGENET,
    UPSAMPLE_MODES,
    Normalization,
    Upsample,
    logits_to_labels,
    to_input_tensor,
)
from genadapt.labels import LabelSpace
from genadapt.model import FCN8s

log = logging.getLogger(__name__)


class Segmenter:
    """Runs F+C with PyTorch: resize + normalize, network, ×2 upsample, argmax.

    The model must be in eval mode; `from_checkpoint` and `from_path` take care of it.
    """

    def __init__(
        self,
        model: FCN8s,
        label_space: LabelSpace,
        input_size: tuple[int, int],
        normalization: Normalization = IMAGENET,
        upsample: Upsample = "bilinear",
        output_scale: int = 2,
    ) -> None:
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.model = model
        self.label_space = label_space
        self.input_size = input_size
        self.normalization = normalization
        self.upsample: Upsample = upsample
        width, height = input_size
        # The paper predicts at the network size and upsamples ×2 (1024×512 → 2048×1024).
        self.output_size = (width * output_scale, height * output_scale)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, device: str = "cpu", **kwargs) -> Segmenter:
        model = checkpoint.build_model().to(torch.device(device))
        return cls(model, checkpoint.label_space, checkpoint.input_size, checkpoint.normalization,
                   **kwargs)  # fmt: skip

    @classmethod
    def from_path(cls, path: str | Path, device: str = "cpu", **kwargs) -> Segmenter:
        return cls.from_checkpoint(load_checkpoint(path), device, **kwargs)

    @torch.inference_mode()
    def segment(
        self, images: list[np.ndarray], output_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """RGB uint8 images (any sizes) → uint8 class ids (N, H, W) at `output_size` = (W, H)."""
        device = next(self.model.parameters()).device
        x = to_input_tensor(images, self.input_size, self.normalization).to(device)
        logits = self.model(x)
        labels = logits_to_labels(logits, output_size or self.output_size, self.upsample)
        return labels.cpu().numpy()
