"""ONNX Runtime's providers and their options, as asked for on a GPU machine; and the refusals
that keep a GPU deployment from quietly running on the CPU."""

from __future__ import annotations

import pytest

from genadapt.errors import GenadaptError
from genadapt.runtime import RuntimeOptions, ort_providers
from genadapt.runtime.ort_providers import (
    TensorrtProfile,
    both_installed_message,
    choose_providers,
    default_cache_dir,
    tensorrt_options,
)

GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_cpu_asks_for_the_cpu_only():
    assert choose_providers("cpu", GPU) == ["CPUExecutionProvider"]


def test_cuda_keeps_tf32_unless_told_and_falls_back_only_to_listed_providers():
    providers = choose_providers("cuda", GPU)
    assert providers == [("CUDAExecutionProvider", {"use_tf32": 1}), "CPUExecutionProvider"]
    assert choose_providers("cuda", GPU, tf32=False)[0] == ("CUDAExecutionProvider",
                                                            {"use_tf32": 0})  # fmt: skip
    # fp16 graphs leave use_tf32 unset: at 0, ONNX Runtime's cuDNN path loses tensor cores.
    assert choose_providers("cuda", GPU, tf32=None, nhwc=True)[0] == (
        "CUDAExecutionProvider", {"prefer_nhwc": 1})  # fmt: skip


def test_a_missing_gpu_provider_is_an_error_naming_the_fix(monkeypatch):
    monkeypatch.setattr(ort_providers, "installed_onnxruntime_distributions",
                        lambda: ["onnxruntime"])  # fmt: skip
    with pytest.raises(GenadaptError, match="install onnxruntime-gpu"):
        choose_providers("cuda", ["CPUExecutionProvider"])
    monkeypatch.setattr(ort_providers, "installed_onnxruntime_distributions",
                        lambda: ["onnxruntime", "onnxruntime-gpu"])  # fmt: skip
    with pytest.raises(GenadaptError, match="Keep exactly one"):
        choose_providers("tensorrt", ["CPUExecutionProvider"])
    with pytest.raises(GenadaptError, match="must be one of"):
        choose_providers("rocm", GPU)


def test_both_runtimes_installed_is_named():
    assert both_installed_message(["onnxruntime"]) is None
    assert "exactly one" in both_installed_message(["onnxruntime", "onnxruntime-gpu"])


def test_this_machine_has_exactly_one_onnxruntime():
    assert len(ort_providers.installed_onnxruntime_distributions()) == 1


def test_tensorrt_provider_gets_a_profile_fp16_and_a_writable_cache(tmp_path):
    profile = TensorrtProfile("image", (512, 1024, 3), max_batch=8)
    options = tensorrt_options(profile, tmp_path / "cache", fp16=True)
    assert options["trt_profile_min_shapes"] == "image:1x512x1024x3"
    assert options["trt_profile_opt_shapes"] == "image:1x512x1024x3"
    assert options["trt_profile_max_shapes"] == "image:8x512x1024x3"
    assert options["trt_fp16_enable"] is True
    assert options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"] == str(tmp_path / "cache")
    assert tensorrt_options(profile, tmp_path, fp16=False)["trt_fp16_enable"] is False
    providers = choose_providers("tensorrt", GPU, tensorrt=options)
    assert providers[0] == ("TensorrtExecutionProvider", options)
    assert providers[1][0] == "CUDAExecutionProvider"


def test_the_engine_cache_is_never_beside_the_model(monkeypatch, tmp_path):
    monkeypatch.delenv("GENADAPT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "genadapt"
    monkeypatch.setenv("GENADAPT_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_onnx_file_on_tensorrt_builds_its_options_from_the_sidecar(monkeypatch, tmp_path):
    """What OnnxSegmenter.from_file asks ONNX Runtime for, up to the session (no GPU here)."""
    from genadapt.checkpoint import save_checkpoint
    from genadapt.export.exporter import ExportOptions, run_export
    from genadapt.runtime import onnx_backend

    from helpers import make_checkpoint

    checkpoint = save_checkpoint(make_checkpoint(), tmp_path / "c.pt")
    run_export(checkpoint, tmp_path / "out", ExportOptions(flavours=("labels",), parity_images=1))
    seen = {}

    def fake_choose(device, available, tensorrt=None, tf32=True):
        seen.update(device=device, tensorrt=tensorrt)
        raise GenadaptError("stop here")

    monkeypatch.setattr(onnx_backend, "choose_providers", fake_choose)
    (tmp_path / "models").mkdir()
    (tmp_path / "out").chmod(0o555)  # a read-only model folder, as mounted in a container
    try:
        with pytest.raises(GenadaptError, match="stop here"):
            onnx_backend.OnnxSegmenter.from_file(
                tmp_path / "out/model.labels.onnx",
                "tensorrt",
                options=RuntimeOptions(max_batch=4, cache_dir=tmp_path / "cache"),
            )
    finally:
        (tmp_path / "out").chmod(0o755)
    options = seen["tensorrt"]
    assert options["trt_profile_max_shapes"] == "image:4x32x64x3"
    assert options["trt_fp16_enable"] is True
    assert options["trt_engine_cache_path"].startswith(str(tmp_path / "cache"))
