"""Triton repositories: every config.pbtxt parses against Triton's own ModelConfig schema, and a
TensorRT plan carries what it was built for, which `check` compares with the serving machine."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from genadapt.export import triton
from genadapt.export.triton import check_repository, config_pbtxt, write_repository
from genadapt.sidecar import Artifact

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")


def artifact(kind: str) -> Artifact:
    return Artifact(
        file="model.engine" if kind == "tensorrt" else "model.labels.onnx",
        kind=kind,
        flavour="labels",
        sha256="0" * 64,
        input_name="image",
        input_dtype="uint8",
        input_shape=["batch", 512, 1024, 3],
        output_name="labels",
        output_dtype="uint8",
        output_shape=["batch", 1024, 2048],
        tensorrt_version="10.5.0" if kind == "tensorrt" else None,
        gpu="NVIDIA H100 80GB HBM3" if kind == "tensorrt" else None,
    )


def parse(text: str):
    """Triton's own parser: an unknown field or a wrong type is an error."""
    return text_format.Parse(text, model_config_pb2.ModelConfig())


@pytest.mark.parametrize("kind", ["onnx", "tensorrt"])
def test_config_is_a_valid_triton_model_config(kind):
    config = parse(config_pbtxt("genadapt", artifact(kind), max_batch=8, queue_delay_us=2000))
    assert config.name == "genadapt" and config.max_batch_size == 8
    assert config.platform == ("tensorrt_plan" if kind == "tensorrt" else "onnxruntime_onnx")
    (inp,), (out,) = config.input, config.output
    assert (inp.name, list(inp.dims)) == ("image", [512, 1024, 3])
    assert inp.data_type == model_config_pb2.TYPE_UINT8
    assert (out.name, list(out.dims)) == ("labels", [1024, 2048])
    assert out.data_type == model_config_pb2.TYPE_UINT8
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    params = {k: v.string_value for k, v in config.parameters.items()}
    if kind == "tensorrt":
        assert params == {"genadapt_tensorrt_version": "10.5.0",
                          "genadapt_gpu": "NVIDIA H100 80GB HBM3"}  # fmt: skip
    else:
        assert params == {}


def test_check_refuses_a_plan_for_another_tensorrt_or_gpu(tmp_path, capsys, monkeypatch):
    plan = tmp_path / "model.engine"
    plan.write_bytes(b"plan")
    write_repository(tmp_path / "triton", plan, artifact("tensorrt"))
    repo = tmp_path / "triton"
    assert (repo / "genadapt/1/model.plan").read_bytes() == b"plan"
    assert check_repository(repo, "10.5.0", "NVIDIA H100 80GB HBM3") == []
    (problem,) = check_repository(repo, "10.3.0", "NVIDIA H100 80GB HBM3")
    assert "TensorRT 10.5.0 (this machine: 10.3.0)" in problem
    (problem,) = check_repository(repo, "10.5.0", None)
    assert "this machine: 'none found'" in problem
    monkeypatch.setattr(triton, "local_tensorrt_version", lambda: "10.5.0")
    monkeypatch.setattr(triton, "local_gpu_name", lambda: "NVIDIA L4")
    assert triton.main(["check", str(repo)]) == 1
    assert "NVIDIA L4" in capsys.readouterr().err
    monkeypatch.setattr(triton, "local_gpu_name", lambda: "NVIDIA H100 80GB HBM3")
    assert triton.main(["check", str(repo)]) == 0


def test_an_onnx_repository_needs_no_check(tmp_path):
    model = tmp_path / "model.labels.onnx"
    model.write_bytes(b"onnx")
    write_repository(tmp_path / "triton", model, artifact("onnx"))
    assert check_repository(tmp_path / "triton", None, None) == []


def test_the_python_backend_model_has_the_onnx_models_inputs_outputs_and_batching(tmp_path):
    from genadapt.export.triton import write_python_model

    graph, sidecar = tmp_path / "model.labels.onnx", tmp_path / "model.json"
    graph.write_bytes(b"onnx")
    sidecar.write_text("{}")
    model_dir = write_python_model(tmp_path / "triton", graph, sidecar, artifact("onnx"))
    python = parse((model_dir / "config.pbtxt").read_text())
    onnx = parse(config_pbtxt("genadapt", artifact("onnx"), max_batch=8, queue_delay_us=2000))
    assert python.backend == "python" and python.platform == ""
    assert python.input == onnx.input and python.output == onnx.output
    assert python.max_batch_size == onnx.max_batch_size
    assert python.dynamic_batching == onnx.dynamic_batching
    assert python.parameters["genadapt_device"].string_value == "auto"
    assert sorted(p.name for p in (model_dir / "1").iterdir()) == [
        "model.json", "model.labels.onnx", "model.py"]  # fmt: skip
    assert "class TritonPythonModel" in (model_dir / "1" / "model.py").read_text()
