"""A Triton Inference Server model repository for the `labels` flavour.

    triton/genadapt/config.pbtxt
    triton/genadapt/1/model.onnx      (or model.plan for a TensorRT engine)

uint8 images in, uint8 label maps out, with server-side dynamic batching: for users who outgrow
one genadapt-serve process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from genadapt.sidecar import Artifact

TRITON_DTYPES = {"uint8": "TYPE_UINT8", "float32": "TYPE_FP32"}


def config_pbtxt(name: str, artifact: Artifact, max_batch: int, queue_delay_us: int) -> str:
    """Triton's model configuration; dims exclude the batch dimension (max_batch_size > 0)."""
    platform = "tensorrt_plan" if artifact.kind == "tensorrt" else "onnxruntime_onnx"

    def tensor(kind: str, name: str, dtype: str, shape: list) -> str:
        dims = ", ".join(str(d) for d in shape[1:])
        body = f'    name: "{name}"\n    data_type: {TRITON_DTYPES[dtype]}\n    dims: [ {dims} ]'
        return f"{kind} [\n  {{\n{body}\n  }}\n]"

    return "\n".join(
        [
            f'name: "{name}"',
            f'platform: "{platform}"',
            f"max_batch_size: {max_batch}",
            tensor("input", artifact.input_name, artifact.input_dtype, artifact.input_shape),
            tensor("output", artifact.output_name, artifact.output_dtype, artifact.output_shape),
            f"dynamic_batching {{\n  max_queue_delay_microseconds: {queue_delay_us}\n}}",
            "instance_group [\n  {\n    count: 1\n    kind: KIND_GPU\n  }\n]",
            "",
        ]
    )


def write_repository(
    root: Path,
    artifact_path: Path,
    artifact: Artifact,
    name: str = "genadapt",
    max_batch: int = 8,
    queue_delay_us: int = 2000,
) -> Path:
    """Lay out `root/name/` for Triton; the model file is hard-linked when possible."""
    model_dir = root / name
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    target = version_dir / ("model.plan" if artifact.kind == "tensorrt" else "model.onnx")
    target.unlink(missing_ok=True)
    try:
        os.link(artifact_path, target)
    except OSError:
        shutil.copyfile(artifact_path, target)
    (model_dir / "config.pbtxt").write_text(config_pbtxt(name, artifact, max_batch, queue_delay_us))
    return model_dir
