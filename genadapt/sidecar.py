"""`model.json`: what an export folder holds, written by genadapt-export, read by every runtime.

One sidecar describes every artifact of a folder (ONNX flavours, TensorRT engine): file hash,
input/output names, dtypes and shapes, precision, and, for an engine, the TensorRT version and
GPU it was built for, with the parity results of the export. It also carries the `ModelSpec`
that serving needs without the checkpoint: classes, input size, normalization, upsampling and
output scale; each artifact's own precision completes it (`Sidecar.spec_for`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genadapt.errors import GenadaptError
from genadapt.fileio import atomic_write_bytes
from genadapt.spec import ModelSpec, Precision

SIDECAR_NAME = "model.json"
FORMAT = "genadapt-export"
VERSION = 2  # 2: one `spec` object instead of loose fields


class SidecarError(GenadaptError):
    """A missing, foreign or mismatching sidecar."""


@dataclass
class Artifact:
    """One exported file."""

    file: str
    kind: str  # "onnx" | "tensorrt"
    flavour: str  # "logits" (float NCHW in, logits out) | "labels" (uint8 NHWC in, uint8 out)
    sha256: str
    input_name: str
    input_dtype: str
    input_shape: list[Any]  # "batch" for the dynamic dimension
    output_name: str
    output_dtype: str
    output_shape: list[Any]
    precision: Precision = "fp32"
    opset: int | None = None
    tensorrt_version: str | None = None
    gpu: str | None = None
    max_batch: int | None = None
    parity: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)  # INT8: how it was calibrated


@dataclass
class Sidecar:
    spec: ModelSpec
    checkpoint: dict[str, Any]  # step, source file hash, model config
    versions: dict[str, str]
    artifacts: dict[str, Artifact] = field(default_factory=dict)

    def spec_for(self, file_name: str) -> ModelSpec:
        """The spec an artifact runs with: the folder's, at that artifact's precision."""
        return self.spec.replace(precision=self.artifact(file_name).precision)

    def artifact(self, file_name: str) -> Artifact:
        try:
            return self.artifacts[file_name]
        except KeyError:
            raise SidecarError(
                f"{SIDECAR_NAME} does not describe {file_name}; it lists {sorted(self.artifacts)}"
            ) from None

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT,
            "version": VERSION,
            "spec": self.spec.to_dict(),
            "checkpoint": self.checkpoint,
            "versions": self.versions,
            "artifacts": {name: asdict(a) for name, a in self.artifacts.items()},
        }
        return json.dumps(data, indent=2).encode()

    def save(self, folder: str | Path) -> Path:
        return atomic_write_bytes(Path(folder) / SIDECAR_NAME, self.to_json())


def load_sidecar(artifact_path: str | Path) -> Sidecar:
    """The sidecar next to an exported file; a clear error if it is missing or foreign."""
    path = Path(artifact_path).parent / SIDECAR_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SidecarError(
            f"no {SIDECAR_NAME} next to {artifact_path}: export with genadapt-export, which "
            "writes the classes, input size and normalization the model needs"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SidecarError(f"cannot read {path}: {exc}") from None
    if data.get("format") != FORMAT:
        raise SidecarError(f"{path} is not a genadapt export sidecar")
    if data.get("version") != VERSION:
        raise SidecarError(
            f"{path} is a version {data.get('version')} sidecar; this genadapt reads version "
            f"{VERSION}: export the checkpoint again"
        )
    try:
        return Sidecar(
            spec=ModelSpec.from_dict(data["spec"]),
            checkpoint=data["checkpoint"],
            versions=data["versions"],
            artifacts={k: Artifact(**v) for k, v in data["artifacts"].items()},
        )
    except (KeyError, TypeError, ValueError, GenadaptError) as exc:
        raise SidecarError(f"{path}: malformed sidecar ({exc})") from None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_artifact(path: str | Path, artifact: Artifact) -> None:
    """Refuse a file whose bytes are not the ones the sidecar describes."""
    actual = file_sha256(path)
    if actual != artifact.sha256:
        raise SidecarError(
            f"{path} does not match {SIDECAR_NAME} (sha256 {actual[:12]}… vs "
            f"{artifact.sha256[:12]}…): it was changed after export; export again"
        )


def check_engine_compatible(artifact: Artifact, tensorrt_version: str, gpu: str) -> None:
    """An engine runs only on the TensorRT version and GPU it was built for: never guess."""
    problems = []
    if artifact.tensorrt_version != tensorrt_version:
        problems.append(f"TensorRT {artifact.tensorrt_version} (this machine: {tensorrt_version})")
    if artifact.gpu != gpu:
        problems.append(f"GPU {artifact.gpu!r} (this machine: {gpu!r})")
    if problems:
        raise SidecarError(
            f"engine {artifact.file} was built for "
            + " and ".join(problems)
            + "; rebuild it here with genadapt-export --tensorrt, or run the ONNX file"
        )
