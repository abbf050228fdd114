"""Build a TensorRT engine from the `labels` ONNX file (TensorRT 10 Python API).

Not run on real hardware here: TensorRT cannot be installed on the machines this project is
developed and tested on. Everything around it (sidecar, refusal of a mismatched engine, Triton
repository) is tested; this module is written against the documented API and imported lazily.
"""

from __future__ import annotations

import logging
from pathlib import Path

from genadapt.export.onnx_export import ExportError
from genadapt.runtime.tensorrt_backend import import_tensorrt
from genadapt.sidecar import Artifact, file_sha256
from genadapt.spec import Precision

log = logging.getLogger(__name__)
# The engine precisions, in genadapt's one vocabulary (spec.Precision); bf16 is not built here.
PRECISIONS: tuple[Precision, ...] = ("fp32", "tf32", "fp16", "int8")


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    onnx_artifact: Artifact,
    precision: Precision = "fp16",
    max_batch: int = 8,
    opt_batch: int = 1,
    timing_cache: Path | None = None,
    workspace_gib: float = 4.0,
) -> Artifact:
    """Parse, build with an optimization profile over batch 1…max_batch, serialize."""
    import torch

    trt = import_tensorrt()
    check_tensorrt_version(trt.__version__)
    if not torch.cuda.is_available():
        raise ExportError("building a TensorRT engine needs a CUDA GPU")
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = _parse(trt, builder, logger, onnx_path)
    config = _builder_config(trt, builder, precision, workspace_gib)
    _, *shape = onnx_artifact.input_shape  # (batch, H, W, 3)
    profile = builder.create_optimization_profile()
    profile.set_shape(
        onnx_artifact.input_name, (1, *shape), (opt_batch, *shape), (max_batch, *shape)
    )
    config.add_optimization_profile(profile)
    apply_timing_cache(config, timing_cache)
    log.info(
        "building a %s TensorRT engine (batch 1..%d); this takes minutes", precision, max_batch
    )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT failed to build the engine (see its log above)")
    engine_path.write_bytes(bytes(serialized))
    if timing_cache is not None:
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return _engine_artifact(engine_path, onnx_artifact, precision, max_batch, trt.__version__)


def _parse(trt, builder, logger, onnx_path: Path):
    """The ONNX file as a TensorRT network definition; the parser's errors if it fails."""
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    return network


def _builder_config(trt, builder, precision: Precision, workspace_gib: float):
    """The builder's workspace and the precision flags of `precision`."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        # Explicit quantization: the QDQ nodes of model.labels.int8.onnx say what runs in INT8;
        # the layers kept in float there may run in fp16.
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 is on by default: strict fp32 asks off
    return config


def _engine_artifact(
    engine_path: Path, onnx_artifact: Artifact, precision: Precision, max_batch: int, version: str
) -> Artifact:
    """model.json's record of a built engine: the ONNX file's I/O, uint8 in and out."""
    import torch

    return Artifact(
        file=engine_path.name,
        kind="tensorrt",
        flavour="labels",
        sha256=file_sha256(engine_path),
        input_name=onnx_artifact.input_name,
        input_dtype="uint8",
        input_shape=onnx_artifact.input_shape,
        output_name=onnx_artifact.output_name,
        output_dtype="uint8",
        output_shape=onnx_artifact.output_shape,
        precision=precision,
        opset=onnx_artifact.opset,
        tensorrt_version=version,
        gpu=torch.cuda.get_device_name(),
        max_batch=max_batch,
    )


def check_tensorrt_version(version: str) -> None:
    """TensorRT 10 only: 11 drops the weakly typed precision flags (BuilderFlag.FP16) used here,
    and 8 lacks the name-based I/O API (set_tensor_address) that the runtime uses."""
    major = int(version.split(".")[0])
    if major != 10:
        raise ExportError(
            f"TensorRT {version} is not supported: genadapt builds engines with TensorRT 10 "
            "(pip install 'tensorrt>=10,<11')"
        )


def apply_timing_cache(config, path: Path | None) -> None:
    """Start from the timing cache at `path` when it is usable. A cache written by another GPU
    or TensorRT version is refused by set_timing_cache (it returns False): then start empty
    rather than build with a cache TensorRT did not take, and overwrite it afterwards."""
    data = path.read_bytes() if path is not None and path.exists() else b""
    if config.set_timing_cache(config.create_timing_cache(data), ignore_mismatch=False):
        return
    log.warning("the timing cache %s is from another GPU or TensorRT version: starting anew", path)
    if not config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False):
        raise ExportError("TensorRT refused an empty timing cache")
