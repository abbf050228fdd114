"""A Triton Inference Server model repository for the `labels` flavour.

    triton/genadapt/config.pbtxt
    triton/genadapt/1/model.onnx      (or model.plan for a TensorRT engine)

uint8 images in, uint8 label maps out, with server-side dynamic batching: for users who outgrow
one genadapt-serve process.

A TensorRT plan runs only on the TensorRT version and GPU it was built with, and Triton says so
only when it fails to load it. The config therefore carries both as parameters, and

    python -m genadapt.export.triton check triton/

run on the serving machine (inside the Triton container) compares them with what is there.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from genadapt.sidecar import Artifact, SidecarError, check_engine_compatible

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
            *_build_parameters(artifact),
            "",
        ]
    )


def _build_parameters(artifact: Artifact) -> list[str]:
    """What a plan was built for, as Triton model parameters (ignored by the server)."""
    if artifact.kind != "tensorrt":
        return []
    built = {"genadapt_tensorrt_version": artifact.tensorrt_version, "genadapt_gpu": artifact.gpu}
    return [
        f'parameters {{\n  key: "{key}"\n  value {{ string_value: "{value}" }}\n}}'
        for key, value in built.items()
    ]


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


def local_tensorrt_version() -> str | None:
    """TensorRT here: the Python package, else libnvinfer itself (Triton's images ship the library
    without the Python package)."""
    try:
        import tensorrt

        return tensorrt.__version__
    except ImportError:
        pass
    for name in ("libnvinfer.so.10", "libnvinfer.so"):
        try:
            code = ctypes.CDLL(name).getInferLibVersion()  # e.g. 100500 for 10.5.0
        except (OSError, AttributeError):
            continue
        return f"{code // 10000}.{code // 100 % 100}.{code % 100}"
    return None


def local_gpu_name() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "--id=0"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def check_repository(root: Path, tensorrt_version: str | None, gpu: str | None) -> list[str]:
    """Problems that would stop Triton from loading the plans under `root` here (empty: none).

    Reads only what `config_pbtxt` writes, so that it runs in a Triton image without protobuf."""
    problems = []
    for config_path in sorted(root.glob("*/config.pbtxt")):
        text = config_path.read_text()
        if 'platform: "tensorrt_plan"' not in text:
            continue
        params = dict(
            re.findall(r'key: "(genadapt_\w+)"\s*value \{ string_value: "([^"]*)" \}', text)
        )
        built = Artifact(
            file=str(config_path.parent / "1" / "model.plan"),
            kind="tensorrt",
            flavour="labels",
            sha256="",
            input_name="",
            input_dtype="",
            input_shape=[],
            output_name="",
            output_dtype="",
            output_shape=[],
            tensorrt_version=params.get("genadapt_tensorrt_version"),
            gpu=params.get("genadapt_gpu"),
        )
        try:
            check_engine_compatible(built, tensorrt_version or "none found", gpu or "none found")
        except SidecarError as exc:
            problems.append(str(exc))
    return problems


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genadapt-triton",
        description="Tools for a Triton repository written by genadapt-export --triton "
        "(also `python -m genadapt.export.triton` where only the package is on the path).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check", help="check that the repository's TensorRT plans fit this machine"
    )
    check.add_argument("repository", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    problems = check_repository(args.repository, local_tensorrt_version(), local_gpu_name())
    for problem in problems:
        print(f"genadapt-triton: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.repository}: every TensorRT plan matches this machine's TensorRT and GPU")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
