"""`ModelSpec`: what a deployed F+C is, apart from its weights.

One typed description shared by the checkpoint, the export sidecar and every runtime backend: the
label space, the size the network runs at, its input normalization, how predictions are brought
to the output size, that output scale, and the numeric precision of the artifact.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from genadapt.errors import GenadaptError
from genadapt.imaging import IMAGENET, UPSAMPLE_MODES, Normalization, Upsample
from genadapt.labels import LabelSpace

# The paper upsamples predictions ×2 (a 1024×512 network answers at Cityscapes' 2048×1024).
PAPER_OUTPUT_SCALE = 2

# The one vocabulary of numeric precision: of an artifact (ModelSpec, model.json), of an engine
# built (genadapt-export --precision) and of what a GPU computes in (RuntimeOptions). tf32 is
# fp32 storage with TF32 tensor-core math; each use takes the subset it supports.
Precision = Literal["fp32", "tf32", "fp16", "bf16", "int8"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)


def check_precision(
    value: str, allowed: tuple[str, ...] = PRECISIONS, what: str = "precision"
) -> Precision:
    """`value` as a Precision, or a clear error naming the ones `allowed` here."""
    if value not in allowed:
        raise GenadaptError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return cast(Precision, value)


@dataclass(frozen=True)
class ModelSpec:
    label_space: LabelSpace
    input_size: tuple[int, int]  # (W, H) the network runs at
    normalization: Normalization = IMAGENET
    upsample: Upsample = "bilinear"  # logits → output size: bilinear then argmax, or nearest
    output_scale: int = PAPER_OUTPUT_SCALE
    precision: Precision = "fp32"

    def __post_init__(self) -> None:
        if self.upsample not in UPSAMPLE_MODES:
            raise GenadaptError(f"upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        check_precision(self.precision)
        if self.output_scale < 1:
            raise GenadaptError(f"output_scale must be at least 1, got {self.output_scale}")
        object.__setattr__(self, "input_size", (int(self.input_size[0]), int(self.input_size[1])))

    @property
    def output_size(self) -> tuple[int, int]:
        """(W, H) of the label maps: `output_scale`× the network size."""
        return (self.input_size[0] * self.output_scale, self.input_size[1] * self.output_scale)

    def replace(self, **changes: Any) -> ModelSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        space = self.label_space
        return {
            "label_space": space.to_dict(),
            # Derived from the label space; written out for readers of the JSON, never read back.
            "class_names": list(space.names),
            "palette": [list(c) for c in space.palette],
            "input_size": list(self.input_size),
            "normalization": self.normalization.to_dict(),
            "upsample": self.upsample,
            "output_scale": self.output_scale,
            "precision": self.precision,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(
            label_space=LabelSpace.from_dict(data["label_space"]),
            input_size=(data["input_size"][0], data["input_size"][1]),
            normalization=Normalization.from_dict(data["normalization"]),
            upsample=data["upsample"],
            output_scale=int(data["output_scale"]),
            precision=str(data["precision"]),
        )
