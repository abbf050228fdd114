import dataclasses
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from genadapt.checkpoint import save_checkpoint
from genadapt.errors import GenadaptError
from genadapt.export.cli import cli
from genadapt.export.exporter import ExportOptions, run_export
from genadapt.export.onnx_export import ExportError, check_only_test_time_weights, model_elements
from genadapt.export.parity import ParityError, check_parity
from genadapt.labels import CITYSCAPES19
from genadapt.onnx_graph import export_graph
from genadapt.runtime import RuntimeOptions, TorchSegmenter, load_segmenter
from genadapt.runtime.onnx_backend import OnnxSegmenter
from genadapt.sidecar import SidecarError, check_engine_compatible, file_sha256, load_sidecar

from helpers import make_checkpoint, trained_like_checkpoint

TORCH, ORT = RuntimeOptions(backend="torch"), RuntimeOptions(backend="onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    path = save_checkpoint(trained_like_checkpoint(), root / "ckpt.pt")
    run_export(path, root / "out", ExportOptions(triton=True, parity_images=3))
    return root / "out", path


@pytest.mark.parametrize("size", [(64, 32), (96, 64)])
@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_matches_pytorch(size, batch):
    checkpoint = trained_like_checkpoint(size)
    model = checkpoint.build_model()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, size[1], size[0], 3), dtype=np.uint8)
    torch_seg = TorchSegmenter.from_checkpoint(checkpoint)
    expected = torch_seg.run(images, torch_seg.spec.output_size)
    spec = checkpoint.spec
    for flavour in ("logits", "labels"):
        graph = export_graph(model, flavour, spec)
        onnx.checker.check_model(onnx.load_from_string(graph.data), full_check=True)
        ort_seg = OnnxSegmenter.from_graph(graph, spec)
        labels = ort_seg.run(images, ort_seg.spec.output_size)
        assert labels.dtype == np.uint8 and labels.shape == (batch, 2 * size[1], 2 * size[0])
        assert (labels == expected).mean() > 0.9999, flavour
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    mean, std = (
        torch.tensor(v).view(1, 3, 1, 1) for v in (spec.normalization.mean, spec.normalization.std)
    )
    x = ((x - mean) / std).numpy()
    ort_logits = OnnxSegmenter.from_graph(export_graph(model, "logits", spec), spec).logits(x)
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ort_logits, torch_logits, atol=1e-4 * np.abs(torch_logits).max())
    with pytest.raises(GenadaptError, match="returns labels, not logits"):
        OnnxSegmenter.from_graph(export_graph(model, "labels", spec), spec).logits(x)


def test_export_writes_flavours_sidecar_and_triton(exported):
    out, _ = exported
    assert {p.name for p in out.iterdir()} == {"model.logits.onnx", "model.labels.onnx",
                                              "model.json", "triton"}  # fmt: skip
    sidecar = load_sidecar(out / "model.labels.onnx")
    assert sidecar.spec.label_space == CITYSCAPES19 and sidecar.spec.input_size == (64, 32)
    assert sidecar.spec.output_size == (128, 64) and sidecar.spec.upsample == "bilinear"
    written = json.loads((out / "model.json").read_text())
    assert written["version"] == 2 and written["spec"]["class_names"] == list(CITYSCAPES19.names)
    labels = sidecar.artifact("model.labels.onnx")
    assert (labels.input_dtype, labels.input_shape) == ("uint8", ["batch", 32, 64, 3])
    assert (labels.output_dtype, labels.output_shape) == ("uint8", ["batch", 64, 128])
    assert labels.opset == 17 and labels.parity["passed"]
    assert sidecar.artifact("model.logits.onnx").parity["max_abs_logit_diff"] < 1e-3
    assert json.loads((out / "model.json").read_text())["checkpoint"]["file"] == "ckpt.pt"
    for name in ("model.logits.onnx", "model.labels.onnx"):
        proto = onnx.load(str(out / name))
        assert proto.opset_import[0].version >= 17
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_no_generator_or_discriminator_in_the_files(exported):
    out, checkpoint_path = exported
    from genadapt.checkpoint import load_checkpoint

    expected = model_elements(load_checkpoint(checkpoint_path))
    for name in ("model.logits.onnx", "model.labels.onnx"):
        proto = onnx.load(str(out / name))
        check_only_test_time_weights(proto, expected)  # passes: F+C only
        weights = sum(numpy_helper.to_array(i).size for i in proto.graph.initializer
                      if i.data_type == onnx.TensorProto.FLOAT)  # fmt: skip
        assert abs(weights - expected) <= 0.01 * expected + 4096
        mystery = numpy_helper.from_array(np.zeros(expected // 2, np.float32), "mystery")
        proto.graph.initializer.append(mystery)  # a generator's weights under a harmless name
        with pytest.raises(ExportError, match="weight values but F"):
            check_only_test_time_weights(proto, expected)
        proto.graph.initializer.pop()
        extra = numpy_helper.from_array(np.zeros(50_000, np.float32), "G.stage1.0.weight")
        proto.graph.initializer.append(extra)
        with pytest.raises(ExportError, match="training-only"):
            check_only_test_time_weights(proto, expected)
        proto.graph.initializer[-1].name = "generator_weights_renamed"
        with pytest.raises(ExportError, match="training-only"):
            check_only_test_time_weights(proto, expected)


def test_triton_repository_holds_the_labels_model_and_a_valid_config(exported):
    from google.protobuf import text_format

    model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    out, _ = exported
    text = (out / "triton/genadapt/config.pbtxt").read_text()
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 8
    (inp,), (outp,) = config.input, config.output
    assert (inp.name, list(inp.dims), outp.name, list(outp.dims)) == (
        "image",
        [32, 64, 3],
        "labels",
        [64, 128],
    )
    model = out / "triton/genadapt/1/model.onnx"
    assert model.read_bytes() == (out / "model.labels.onnx").read_bytes()


def corrupt_bytes(data: bytes, scale: float = 10.0) -> bytes:
    proto = onnx.load_from_string(data)
    init = max(proto.graph.initializer, key=lambda i: int(np.prod(i.dims)))
    array = numpy_helper.to_array(init)
    noisy = array + scale * array.std() * np.random.default_rng(0).standard_normal(array.shape)
    init.CopyFrom(numpy_helper.from_array(noisy.astype(array.dtype), init.name))
    return proto.SerializeToString()


def test_parity_gate_fails_on_a_corrupted_model(tmp_path):
    checkpoint = trained_like_checkpoint()
    graph = export_graph(checkpoint.build_model(), "labels", checkpoint.spec)
    bad = OnnxSegmenter(corrupt_bytes(graph.data), checkpoint.spec, "labels")
    reference = TorchSegmenter.from_checkpoint(checkpoint)
    result = check_parity(reference, bad, images=3)
    assert not result.passed and "labels agree" in result.reasons[0]


def test_failed_export_changes_nothing_in_the_output(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.labels.onnx").write_bytes(b"the user's previous export")
    checkpoint_path = save_checkpoint(trained_like_checkpoint(), tmp_path / "ckpt.pt")
    import genadapt.export.exporter as exporter

    real_export = exporter.export_graph

    def export_corrupted(*args, **kwargs):
        graph = real_export(*args, **kwargs)
        return dataclasses.replace(graph, data=corrupt_bytes(graph.data))

    monkeypatch.setattr(exporter, "export_graph", export_corrupted)
    with pytest.raises(ParityError, match="failed the parity gate"):
        run_export(checkpoint_path, out, ExportOptions(parity_images=2))
    assert [p.name for p in out.iterdir()] == ["model.labels.onnx"]
    assert (out / "model.labels.onnx").read_bytes() == b"the user's previous export"


def test_the_published_files_are_the_gated_bytes(exported):
    out, _ = exported
    sidecar = load_sidecar(out / "model.labels.onnx")
    for name, artifact in sidecar.artifacts.items():
        assert artifact.sha256 == file_sha256(out / name)


def test_an_old_sidecar_is_refused_with_the_fix(exported, tmp_path):
    out, _ = exported
    data = json.loads((out / "model.json").read_text())
    data["version"] = 1
    (tmp_path / "model.json").write_text(json.dumps(data))
    with pytest.raises(SidecarError, match="export the checkpoint again"):
        load_sidecar(tmp_path / "model.labels.onnx")


def test_sidecar_guards(exported, tmp_path):
    out, _ = exported
    sidecar = load_sidecar(out / "model.labels.onnx")
    engine = sidecar.artifact("model.labels.onnx")
    engine.tensorrt_version, engine.gpu = "10.3.0", "NVIDIA H100 80GB HBM3"
    check_engine_compatible(engine, "10.3.0", "NVIDIA H100 80GB HBM3")
    with pytest.raises(SidecarError, match="TensorRT 10.3.0 .this machine: 10.9.0."):
        check_engine_compatible(engine, "10.9.0", "NVIDIA H100 80GB HBM3")
    with pytest.raises(SidecarError, match="GPU 'NVIDIA H100 80GB HBM3'"):
        check_engine_compatible(engine, "10.3.0", "NVIDIA H200")
    # A file changed after export is refused; so is one without a sidecar.
    copy = tmp_path / "model.labels.onnx"
    copy.write_bytes((out / "model.labels.onnx").read_bytes() + b"x")
    (tmp_path / "model.json").write_bytes((out / "model.json").read_bytes())
    with pytest.raises(SidecarError, match="changed after export"):
        load_segmenter(copy)
    (tmp_path / "model.json").unlink()
    with pytest.raises(SidecarError, match="no model.json"):
        load_segmenter(copy)


def test_tensorrt_export_without_tensorrt_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed: the error path cannot be shown here")
    except ImportError:
        pass
    checkpoint_path = save_checkpoint(make_checkpoint(), tmp_path / "ckpt.pt")
    status = cli([str(checkpoint_path), "--out", str(tmp_path / "out"), "--tensorrt"])
    assert status == 2
    err = capsys.readouterr().err
    assert "needs NVIDIA TensorRT" in err or "needs a CUDA GPU" in err
    assert list((tmp_path / "out").iterdir()) == []


def test_same_labels_across_backends_and_commands(exported, tmp_path):
    out, checkpoint_path = exported
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (40, 70, 3), dtype=np.uint8) for _ in range(2)]
    results = {
        "torch": load_segmenter(checkpoint_path, TORCH).segment(images),
        "onnxruntime (checkpoint)": load_segmenter(checkpoint_path, ORT).segment(images),
        "auto (checkpoint)": load_segmenter(checkpoint_path).segment(images),
        "onnx labels": load_segmenter(out / "model.labels.onnx").segment(images),
        "onnx logits": load_segmenter(out / "model.logits.onnx").segment(images),
    }
    for name, labels in results.items():
        assert labels.shape == (2, 64, 128), name
        assert (labels == results["torch"]).mean() > 0.9999, name
    assert load_segmenter(checkpoint_path).backend == "onnxruntime"  # the faster one on a CPU
    with pytest.raises(Exception, match="ONNX file"):
        load_segmenter(out / "model.labels.onnx", TORCH)


def test_tensorrt_engine_matches_pytorch(tmp_path):
    """Runs where TensorRT and a GPU exist (not on this project's CI machines)."""
    pytest.importorskip(
        "tensorrt", reason="TensorRT cannot be installed on this project's machines"
    )
    if not torch.cuda.is_available():
        pytest.skip("building a TensorRT engine needs a CUDA GPU")
    checkpoint_path = save_checkpoint(trained_like_checkpoint(), tmp_path / "ckpt.pt")
    options = ExportOptions(tensorrt=True, precision="fp16", parity_images=2, triton=True)
    sidecar = run_export(checkpoint_path, tmp_path / "out", options)
    assert sidecar.artifact("model.engine").parity["passed"]
    segmenter = load_segmenter(tmp_path / "out" / "model.engine")
    assert segmenter.backend == "tensorrt" and segmenter.spec.precision == "fp16"
    assert (tmp_path / "out/triton/genadapt/1/model.plan").exists()


def test_export_cli(tmp_path, capsys):
    checkpoint_path = save_checkpoint(trained_like_checkpoint(), tmp_path / "ckpt.pt")
    status = cli([str(checkpoint_path), "--out", str(tmp_path / "o"), "--flavour", "labels",
                  "--parity-images", "2"])  # fmt: skip
    assert status == 0
    assert "model.labels.onnx: ['batch', 32, 64, 3]" in capsys.readouterr().out
    assert cli([str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o")]) == 2


def test_an_fp16_logits_graph_is_half_end_to_end_and_agrees_with_fp32():
    """What ONNX Runtime's CUDA provider times in fp16: half input, weights and output."""
    import onnxruntime as ort

    ckpt = trained_like_checkpoint()
    graph = export_graph(ckpt.build_model(), "logits", ckpt.spec, fp16=True)
    proto = onnx.load_from_string(graph.data)
    half = onnx.TensorProto.FLOAT16
    assert proto.graph.input[0].type.tensor_type.elem_type == half
    assert proto.graph.output[0].type.tensor_type.elem_type == half
    assert {t.data_type for t in proto.graph.initializer} == {half}
    assert graph.io.input_dtype == graph.io.output_dtype == "float16"
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 64)).astype(np.float16)
    run = ort.InferenceSession(graph.data, providers=["CPUExecutionProvider"]).run
    fp32 = export_graph(ckpt.build_model(), "logits", ckpt.spec)
    run32 = ort.InferenceSession(fp32.data, providers=["CPUExecutionProvider"]).run
    got, want = run(None, {"input": x})[0], run32(None, {"input": x.astype(np.float32)})[0]
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), want, atol=0.02)
    with pytest.raises(ValueError, match="logits flavour only"):
        export_graph(ckpt.build_model(), "labels", ckpt.spec, fp16=True)


def test_a_full_disk_is_one_line_with_the_path_and_the_free_space(tmp_path, monkeypatch, capsys):
    import genadapt.export.exporter as exporter

    checkpoint_path = save_checkpoint(trained_like_checkpoint(), tmp_path / "ckpt.pt")

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exporter, "write_onnx", no_space)
    out = tmp_path / "o"
    assert cli([str(checkpoint_path), "--out", str(out), "--parity-images", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"genadapt-export: error: cannot write the export "
                                               f"to {out}: the disk is full (")  # fmt: skip
    assert "MB free in" in err[0] and err[0].endswith("nothing was published there")
    assert list(out.iterdir()) == []  # the staging folder is gone too
