"""The checkpoint of the test-time network F+C: one self-describing, versioned file.

The file is a `torch.save` zip holding only tensors and plain Python values, so it is loaded with
`weights_only=True`: the service may be pointed at any file, and loading never runs code from it.
G, D and optimizer states live in the trainer's separate resume file, never here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genadapt.errors import GenadaptError
from genadapt.fileio import atomic_write, load_weights_only
from genadapt.imaging import IMAGENET, Normalization
from genadapt.labels import LabelSpace
from genadapt.model import FCN8s, ModelConfig, build_model, check_input_size
from genadapt.spec import ModelSpec

log = logging.getLogger(__name__)

FORMAT = "genadapt-checkpoint"
# 2: the `ModelSpec` saved whole (`spec`), so that upsampling, output scale and precision come
# back on reload. 1: three loose fields (label space, input size, normalization); still read,
# with the rest at the defaults every version-1 writer used (`_spec_of_version_1`).
VERSION = 2
READABLE_VERSIONS = (1, 2)


class CheckpointError(GenadaptError):
    """The file is not a genadapt checkpoint, is of another version, or does not match its net."""


@dataclass
class Checkpoint:
    """F+C weights, the config that builds them, and the `ModelSpec` they are run with."""

    model_config: ModelConfig
    spec: ModelSpec  # label space, input size (W, H) and normalization of the trained network
    state_dict: dict[str, torch.Tensor]
    train_config: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        space = self.spec.label_space
        if space.num_classes != self.model_config.num_classes:
            raise CheckpointError(
                f"label space {space.name!r} has {space.num_classes} "
                f"classes but the model predicts {self.model_config.num_classes}"
            )
        width, height = self.spec.input_size
        check_input_size(height, width, self.model_config.padding)

    @classmethod
    def from_model(
        cls,
        model: FCN8s,
        label_space: LabelSpace,
        input_size: tuple[int, int],
        normalization: Normalization = IMAGENET,
        **kw: Any,
    ) -> Checkpoint:
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        spec = ModelSpec(label_space, tuple(input_size), normalization)
        return cls(model.config, spec, state, **kw)

    def build_model(self) -> FCN8s:
        """Rebuild F+C with these weights, in eval mode on the CPU."""
        model = build_model(self.model_config)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise CheckpointError(f"weights do not match the stored model config: {exc}") from None
        return model.eval()

    def to_payload(self) -> dict[str, Any]:
        meta = {
            "model": self.model_config.to_dict(),
            "spec": self.spec.to_dict(),
            "train_config": self.train_config,
            "step": int(self.step),
            "metrics": self.metrics,
        }
        try:
            # Plain JSON values only, so that weights_only loading can read every field back.
            meta = json.loads(json.dumps(meta))
        except TypeError as exc:
            raise CheckpointError(f"checkpoint metadata must be plain JSON values: {exc}") from None
        return {"format": FORMAT, "version": VERSION, **meta, "state_dict": self.state_dict}


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    payload = checkpoint.to_payload()
    written = atomic_write(path, lambda f: torch.save(payload, f))
    log.debug("saved checkpoint (step %d) to %s", checkpoint.step, written)
    return written


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint without executing anything from the file; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    payload = load_weights_only(path, CheckpointError)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a genadapt checkpoint (no '{FORMAT}' format marker)")
    version = payload.get("version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} is a version {version} checkpoint; this genadapt reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))} (a newer genadapt wrote it?)"
        )
    try:
        if version == 1:
            spec = _spec_of_version_1(payload)
            log.info("%s: a version-1 checkpoint; its spec read from the three fields it has", path)
        else:
            spec = ModelSpec.from_dict(payload["spec"])
        return Checkpoint(
            model_config=ModelConfig.from_dict(payload["model"]),
            spec=spec,
            state_dict=payload["state_dict"],
            train_config=payload.get("train_config", {}),
            step=int(payload.get("step", 0)),
            metrics=payload.get("metrics", {}),
        )
    except (KeyError, TypeError, ValueError, IndexError, GenadaptError) as exc:
        raise CheckpointError(f"{path}: malformed checkpoint metadata ({exc!r})") from None


def _spec_of_version_1(payload: dict[str, Any]) -> ModelSpec:
    """Version 1 kept label space, input size and normalization only; every genadapt that read
    it took upsampling, output scale and precision at `ModelSpec`'s defaults, so it runs as
    it always did."""
    return ModelSpec(
        LabelSpace.from_dict(payload["label_space"]),
        (int(payload["input_size"][0]), int(payload["input_size"][1])),
        Normalization.from_dict(payload["normalization"]),
    )
