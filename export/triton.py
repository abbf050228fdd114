"""A Triton Inference Server model repository for the `labels` flavour.

    triton/genadapt/config.pbtxt
    triton/genadapt/1/model.onnx      (or model.plan for a TensorRT engine)
    triton/genadapt-python/config.pbtxt
    triton/genadapt-python/1/model.py, model.labels.onnx, model.json

uint8 images in, uint8 label maps out, with server-side dynamic batching: for users who outgrow
one genadapt-serve process. `genadapt` runs on Triton's ONNX Runtime or TensorRT backend (NVIDIA's
containers); `genadapt-python` runs genadapt's own runtime on Triton's Python backend, which
every Triton has (`triton_model.py`).

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


def config_pbtxt(
    name: str, artifact: Artifact, max_batch: int, queue_delay_us: int, python: bool = False
) -> str:
    """Triton's model configuration; dims exclude the batch dimension (max_batch_size > 0).
    `python`: the Python-backend model, with the same inputs, outputs and batching."""
    platform = "tensorrt_plan" if artifact.kind == "tensorrt" else "onnxruntime_onnx"
    runs_on = 'backend: "python"' if python else f'platform: "{platform}"'
    # The Python backend places its instances itself; genadapt picks the device (auto).
    kind = "KIND_CPU" if python else "KIND_GPU"

    def tensor(kind: str, name: str, dtype: str, shape: list) -> str:
        dims = ", ".join(str(d) for d in shape[1:])
        body = f'    name: "{name}"\n    data_type: {TRITON_DTYPES[dtype]}\n    dims: [ {dims} ]'
        return f"{kind} [\n  {{\n{body}\n  }}\n]"

    return "\n".join(
        [
            f'name: "{name}"',
            runs_on,
            f"max_batch_size: {max_batch}",
            tensor("input", artifact.input_name, artifact.input_dtype, artifact.input_shape),
            tensor("output", artifact.output_name, artifact.output_dtype, artifact.output_shape),
            f"dynamic_batching {{\n  max_queue_delay_microseconds: {queue_delay_us}\n}}",
            f"instance_group [\n  {{\n    count: 1\n    kind: {kind}\n  }}\n]",
            *(_device_parameter() if python else _build_parameters(artifact)),
            "",
        ]
    )


def _device_parameter(device: str = "auto") -> list[str]:
    return [f'parameters {{\n  key: "genadapt_device"\n  value {{ string_value: "{device}" }}\n}}']


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
    _link_or_copy(artifact_path, target)
    (model_dir / "config.pbtxt").write_text(config_pbtxt(name, artifact, max_batch, queue_delay_us))
    return model_dir


def write_python_model(
    root: Path,
    graph_path: Path,
    sidecar_path: Path,
    artifact: Artifact,
    name: str = "genadapt-python",
    max_batch: int = 8,
    queue_delay_us: int = 2000,
) -> Path:
    """Lay out `root/name/` for Triton's Python backend: model.py (genadapt's runtime), the
    labels graph and its model.json, and a config with the ONNX model's inputs and outputs."""
    if artifact.kind != "onnx" or artifact.flavour != "labels":
        raise SidecarError("the Python-backend model runs the labels ONNX graph")
    version_dir = root / name / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("triton_model.py"), version_dir / "model.py")
    for source in (graph_path, sidecar_path):
        _link_or_copy(source, version_dir / source.name)
    config = config_pbtxt(name, artifact, max_batch, queue_delay_us, python=True)
    (root / name / "config.pbtxt").write_text(config)
    return root / name


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows it (no second copy of a large model)."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


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
    serve = sub.add_parser(
        "serve",
        help="serve the repository's genadapt-python model on a real Triton server (the "
        "nvidia-pytriton wheel's tritonserver, or GENADAPT_TRITONSERVER)",
    )
    serve.add_argument("repository", type=Path)
    serve.add_argument("--http-port", type=int, default=8000)
    serve.add_argument("--grpc-port", type=int, default=8001)
    serve.add_argument("--metrics-port", type=int, default=8002)
    return parser


def main(argv: list[str] | None = None) -> int:
    from genadapt.cli import run_cli

    args = get_args_parser().parse_args(argv)
    if args.command == "serve":
        from genadapt.export.triton_server import serve

        ports = (args.http_port, args.grpc_port, args.metrics_port)
        return run_cli("genadapt-triton serve", lambda: serve(args.repository, *ports), argv)
    problems = check_repository(args.repository, local_tensorrt_version(), local_gpu_name())
    for problem in problems:
        print(f"genadapt-triton: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.repository}: every TensorRT plan matches this machine's TensorRT and GPU")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
