"""Training data: one sample per step, chosen and augmented as a pure function of the step.

A resumed run therefore sees exactly the samples the uninterrupted run would have seen, with any
number of loader workers.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from genadapt.datasets import SegmentationDataset


class StepDataset(Dataset):
    """Item `step` = sample perm_epoch[step % n], perm_epoch a seeded shuffle per epoch."""

    def __init__(
        self, base: SegmentationDataset, indices: list[int], seed: int, steps: int
    ) -> None:
        self.base, self.indices, self.seed, self.steps = base, indices, seed, steps

    def __len__(self) -> int:
        return self.steps

    def index_at(self, step: int) -> int:
        epoch, position = divmod(step, len(self.indices))
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.indices))
        return self.indices[order[position]]

    def __getitem__(self, step: int) -> dict:
        return self.base.get(self.index_at(step), random.Random(self.seed * 7_919 + step))


def step_loader(
    dataset: StepDataset, start: int, batch_size: int, workers: int, pin_memory: bool
) -> DataLoader:
    """Batches for steps start, start+1, …: item i of batch b is sample (b·batch_size + i)."""
    sampler = range(start * batch_size, len(dataset))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        # Its own generator: creating the loader must not draw from the global RNG, which
        # drives dropout and is restored exactly on resume.
        generator=torch.Generator().manual_seed(dataset.seed),
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )


def to_device_batch(
    sample: dict, device: torch.device, mean: torch.Tensor, std: torch.Tensor, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (B, 3, H, W) → normalized float for F and [0, 1] for D, converted on the device."""
    x01 = sample["image"].to(device, non_blocking=True).float().div_(255.0)
    if channels_last:
        x01 = x01.contiguous(memory_format=torch.channels_last)
    return (x01 - mean) / std, x01
