"""The GPU check, in its CPU self-test mode at tiny sizes: every check runs and reports, the
archive holds the reports, and a broken check fails alone without stopping the others."""

from __future__ import annotations

import json
import tarfile

import pytest

from genadapt.benchmarks import gpu_check
from genadapt.benchmarks.cli import cli

from helpers import build_wheel

CHECKS = ["torch-vs-cpu", "onnxruntime-vs-cpu", "table3", "pipeline", "service",
          "paper-iteration-pad100", "training-bf16", "eval"]  # fmt: skip


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    """One run with the ONNX Runtime check broken on purpose (it raises)."""
    out = tmp_path_factory.mktemp("gpu-check")
    patch = pytest.MonkeyPatch()

    def broken(*args):
        raise RuntimeError("CUDAExecutionProvider exploded")

    patch.setattr(gpu_check, "check_onnxruntime", broken)
    try:
        status = cli(["gpu-check", "--quick", "--device", "cpu", "--out", str(out)])
    finally:
        patch.undo()
    return out, status


def test_every_check_reports_and_a_failure_does_not_stop_the_rest(broken_run, capsys):
    out, status = broken_run
    assert status == 2  # not every check passed
    results = json.loads((out / "checks.json").read_text())
    assert list(results["checks"]) == CHECKS
    statuses = {name: check["status"] for name, check in results["checks"].items()}
    assert statuses.pop("onnxruntime-vs-cpu") == "FAIL"
    assert set(statuses.values()) == {"PASS"}, results["checks"]
    assert "CUDAExecutionProvider exploded" in results["checks"]["onnxruntime-vs-cpu"]["error"]
    assert results["checks"]["torch-vs-cpu"]["label_agreement"] == 1.0  # CPU against CPU
    assert results["checks"]["torch-vs-cpu"]["device_resize_agreement"] == 1.0  # Pillow on both
    assert results["checks"]["eval"]["images_per_s"] > 0
    iteration = results["checks"]["paper-iteration-pad100"]  # fp32 and bf16 at both paddings
    assert set(iteration["rows"]) == {"pad1 fp32", "pad1 bf16", "pad100 fp32", "pad100 bf16"}
    assert all(r["peak_memory_mb"] > 0 for r in iteration["rows"].values())
    training = results["checks"]["training-bf16"]
    assert training["f_seg_last"] < training["f_seg_first"]
    log = (out / "gpu-check.log").read_text()
    assert "FAIL onnxruntime-vs-cpu" in log and "PASS table3" in log
    assert "Traceback" in log  # the failure's traceback is kept for whoever reads the log


def test_the_archive_holds_the_benchmark_reports(broken_run):
    out, _ = broken_run
    with tarfile.open(out / "gpu-check.tar.gz") as archive:
        names = set(archive.getnames())
    assert {"table3.json", "pipeline.json", "http.json", "eval.json", "checks.json",
            "targets.json"} <= names  # fmt: skip
    pipeline = json.loads(archive_member(out / "gpu-check.tar.gz", "pipeline.json"))
    assert {"torch bilinear", "torch nearest"} <= set(pipeline["host_to_host"])
    targets = json.loads((out / "targets.json").read_text())["targets"]
    assert {t["status"] for t in targets} == {"not measured"}  # tiny sizes measure no target


def archive_member(archive_path, name):
    with tarfile.open(archive_path) as archive:
        return archive.extractfile(name).read()


def test_only_runs_the_named_checks(tmp_path, capsys):
    out = tmp_path / "only"
    status = cli(["gpu-check", "--quick", "--device", "cpu", "--out", str(out),
                  "--only", "eval", "table3", "torch-vs-cpu", "--sizes", "64x64"])  # fmt: skip
    assert status == 0
    ran = list(json.loads((out / "checks.json").read_text())["checks"])
    assert ran == ["torch-vs-cpu", "table3", "eval"]
    table3 = json.loads(archive_member(out / "gpu-check.tar.gz", "table3.json"))
    assert [e["size"] for e in table3["sizes"]] == [[64, 64]]
    bad = cli(["gpu-check", "--quick", "--device", "cpu", "--out", str(out), "--only", "tensorrt"])
    assert bad != 0 and "unknown checks ['tensorrt']" in capsys.readouterr().err


def test_the_onnxruntime_check_passes_on_the_cpu(tmp_path):
    plan = gpu_check.CheckPlan.for_device("cpu", quick=True)
    ckpt = gpu_check.trained_like(plan.width, plan.size)
    images = gpu_check.scenes(tmp_path, plan.images, plan.size)
    result = gpu_check.check_onnxruntime(plan, ckpt, images)
    assert result["passed"] and result["providers"] == ["CPUExecutionProvider"]


def test_the_one_command_joins_split_wheels_installs_them_and_runs(tmp_path):
    """benchmarks/gpu_check.sh as a GPU session runs it, with this machine's Python standing in
    for the image's: the wheels travel as one tar in parts, as `make gpu-wheels` packs them."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    built = build_wheel(tmp_path / "build")
    bundle = tmp_path / "gpu-wheels.tar"
    with tarfile.open(bundle, "w") as tar:
        tar.add(built, arcname=built.name)
    data = bundle.read_bytes()
    (wheels / "gpu-wheels.tar.sha256").write_text(
        f"{hashlib.sha256(data).hexdigest()}  gpu-wheels.tar\n"
    )
    half = len(data) // 2

    def deliver(tail: bytes = b"") -> None:
        (wheels / "gpu-wheels.tar.part-aa").write_bytes(data[:half])
        (wheels / "gpu-wheels.tar.part-ab").write_bytes(data[half:] + tail)

    deliver()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "python3"  # a script, not a link: a link would lose the virtualenv
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "GENADAPT_SITE": str(tmp_path / "site")}  # fmt: skip
    out = tmp_path / "out"
    result = subprocess.run(
        [str(root / "benchmarks/gpu_check.sh"), str(wheels), str(out), "--quick", "--device",
         "cpu", "--only", "torch-vs-cpu", "onnxruntime-vs-cpu"], env=env, capture_output=True,
        text=True, timeout=600, cwd=root,  # from the checkout, as a GPU session runs it
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "site/genadapt/benchmarks/gpu_check.py").exists()
    assert sorted(p.name for p in wheels.iterdir()) == [built.name, "gpu-wheels.tar.sha256"]
    results = json.loads((out / "checks.json").read_text())
    assert {c["status"] for c in results["checks"].values()} == {"PASS"}
    assert (out / "gpu-check.tar.gz").exists() and "PASS" in (out / "console.log").read_text()
    deliver(tail=b"x")  # a broken transfer
    bad = subprocess.run([str(root / "benchmarks/gpu_check.sh"), str(wheels), str(out)],
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 1 and "does not match its sha256" in bad.stderr


def test_gpu_report_writes_the_results_folder_and_a_rerun_replaces_its_checks(broken_run, tmp_path):
    out, _ = broken_run
    rerun = tmp_path / "rerun.tar.gz"  # a rerun of the failed check alone, now passing
    checks = {"checks": {"onnxruntime-vs-cpu": {"status": "PASS", "label_agreement": 1.0}}}
    (tmp_path / "checks.json").write_text(json.dumps(checks))
    first = json.loads(archive_member(out / "gpu-check.tar.gz", "table3.json"))
    again = first["sizes"][0] | {"size": [32, 32]}  # a rerun at another size: added, not lost
    (tmp_path / "table3.json").write_text(json.dumps(first | {"sizes": [again]}))
    with tarfile.open(rerun, "w:gz") as archive:
        archive.add(tmp_path / "checks.json", arcname="checks.json")
        archive.add(tmp_path / "table3.json", arcname="table3.json")
    results = tmp_path / "results"
    assert (
        cli(["gpu-report", str(out / "gpu-check.tar.gz"), str(rerun), "--out", str(results)]) == 0
    )
    names = {p.name for p in results.iterdir()}
    assert {"table3.md", "table3.png", "pipeline.md", "http.md", "eval.md", "targets.md",
            "checks.md"} <= names  # fmt: skip
    merged = json.loads((results / "checks.json").read_text())["checks"]
    assert list(merged) == CHECKS and merged["onnxruntime-vs-cpu"]["status"] == "PASS"
    assert "| table3 | PASS |" in (results / "checks.md").read_text()
    table3 = json.loads((results / "table3.json").read_text())["sizes"]
    assert [(e["size"], e["archive"]) for e in table3] == [
        ([32, 32], "rerun.tar.gz"),
        ([64, 32], "gpu-check.tar.gz"),
    ]


def test_the_onnxruntime_profile_says_where_the_time_goes():
    import numpy as np
    import onnxruntime as ort

    from genadapt.onnx_graph import export_graph

    ckpt = gpu_check.trained_like(0.0625, (64, 32))
    graph = export_graph(ckpt.build_model(), "logits", ckpt.spec, fp16=True)
    x = np.zeros((1, 3, 32, 64), np.float16)
    output, profile = gpu_check.profiled_run(ort, graph.data, ["CPUExecutionProvider"],
                                             {"input": x}, runs=2)  # fmt: skip
    assert output.shape == (1, 19, 32, 64)
    by_op = profile["ort_ms_per_run_by_op"]
    assert "Conv on CPUExecutionProvider" in by_op and all(v >= 0 for v in by_op.values())
    assert list(by_op.values()) == sorted(by_op.values(), reverse=True)
    assert profile["ort_memcpy_nodes"] == []  # a CPU session needs no host/device copies


def test_the_profile_counts_only_the_runs_after_warm_up():
    events = [{"name": "model_run", "ts": t, "cat": "Session"} for t in (0, 100, 200, 300)]
    node = {"cat": "Node", "name": "conv_kernel_time",
            "args": {"op_name": "Conv", "provider": "CUDAExecutionProvider"}}  # fmt: skip
    events += [node | {"ts": 10, "dur": 9000}]  # the first run: kernel choice, allocation
    events += [node | {"ts": t, "dur": 1000} for t in (210, 310)]
    assert gpu_check.ops_after_warmup(events, warmup=2, runs=2) == {
        "Conv on CUDAExecutionProvider": 1.0
    }


def test_a_memcpy_in_the_optimized_graph_is_found():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    nodes = [helper.make_node("MemcpyToHost", ["x"], ["h"], name="to_host"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]  # fmt: skip
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]))
    assert gpu_check.memcpy_nodes(model.SerializeToString()) == ["MemcpyToHost:to_host"]


def test_a_run_cut_short_keeps_every_finished_check_in_the_archive(tmp_path, monkeypatch):
    def killed(*args):  # what a time-out does mid-check: nothing after it runs
        raise KeyboardInterrupt

    monkeypatch.setattr(gpu_check, "check_pipeline", killed)
    with pytest.raises(KeyboardInterrupt):
        gpu_check.run_gpu_check(tmp_path, "cpu", quick=True,
                                only=["torch-vs-cpu", "table3", "pipeline"])  # fmt: skip
    checks = json.loads(archive_member(tmp_path / "gpu-check.tar.gz", "checks.json"))
    assert list(checks["checks"]) == ["torch-vs-cpu", "table3"]
    assert json.loads(archive_member(tmp_path / "gpu-check.tar.gz", "table3.json"))["sizes"]
