"""`Segmenter`: RGB images in, uint8 class-id maps out, whatever runs the network."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from genadapt.checkpoint import Checkpoint, load_checkpoint
from genadapt.imaging import UPSAMPLE_MODES, Upsample, logits_to_labels, to_input_tensor
from genadapt.labels import LabelSpace

log = logging.getLogger(__name__)


class Segmenter:
    """Runs F+C from a checkpoint with PyTorch: resize + normalize, network, ×2 upsample, argmax."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        device: str = "cpu",
        upsample: Upsample = "bilinear",
        output_scale: int = 2,
    ) -> None:
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.checkpoint = checkpoint
        self.device = torch.device(device)
        self.upsample: Upsample = upsample
        self.model = checkpoint.build_model().to(self.device)
        width, height = checkpoint.input_size
        # The paper predicts at the network size and upsamples ×2 (1024×512 → 2048×1024).
        self.output_size = (width * output_scale, height * output_scale)

    @classmethod
    def from_path(cls, path: str | Path, **kwargs) -> Segmenter:
        return cls(load_checkpoint(path), **kwargs)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.checkpoint.input_size

    @property
    def label_space(self) -> LabelSpace:
        return self.checkpoint.label_space

    @torch.inference_mode()
    def segment(
        self, images: list[np.ndarray], output_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """RGB uint8 images (any sizes) → uint8 class ids (N, H, W) at `output_size` = (W, H)."""
        x = to_input_tensor(images, self.input_size, self.checkpoint.normalization).to(self.device)
        logits = self.model(x)
        labels = logits_to_labels(logits, output_size or self.output_size, self.upsample)
        return labels.cpu().numpy()
