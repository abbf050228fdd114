import json
import os
import time

import numpy as np
import pytest
import torch

from genadapt.benchmarks.cli import cli
from genadapt.benchmarks.table3 import gflops
from genadapt.benchmarks.timing import summarize, time_calls


def test_percentiles_on_known_samples():
    stats = summarize([i / 1000 for i in range(1, 101)], items_per_call=2)  # 1 … 100 ms
    assert stats["n"] == 100 and stats["min_ms"] == 1.0
    assert stats["p50_ms"] == pytest.approx(50.5)
    assert stats["p90_ms"] == pytest.approx(90.1)
    assert stats["p99_ms"] == pytest.approx(99.01)
    assert stats["items_per_s"] == pytest.approx(2000 / 50.5, rel=1e-3)
    with pytest.raises(ValueError):
        summarize([])


def test_flops_match_the_known_figures():
    assert gflops(1.0, "pad1", (1024, 512)) == pytest.approx(443.4, rel=0.01)
    assert gflops(1.0, "pad100", (1024, 512)) == pytest.approx(667.7, rel=0.01)


def test_table3_quick_writes_every_row(tmp_path):
    assert cli(["table3", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "table3.json").read_text())
    (entry,) = results["sizes"]
    assert set(entry["train"]) == {"full", "source-only"}
    assert entry["train"]["full"]["p50_ms"] > 0
    rows = {(r["backend"], r["precision"], r["batch"]): r for r in entry["eval"]}
    expected = {(b, p) for b in ("torch",) for p in ("fp32", "tf32", "fp16", "fp16+cudagraph")}
    expected |= {("onnxruntime", "fp32"), ("tensorrt", "fp16")}
    expected |= {("onnxruntime-cuda", p) for p in ("fp32", "tf32", "fp16", "fp16+nhwc")}
    expected |= {("torch compile", f"fp16 {mode}") for mode in ("default", "max-autotune")}
    if not torch.cuda.is_available():  # the labels graph, fp32 and INT8, for CPUs
        expected |= {("onnxruntime labels", "fp32"), ("onnxruntime labels", "int8")}
    assert {(b, p) for b, p, _ in rows} == expected
    for row in rows.values():
        if "skipped" in row:  # reported with its reason, never as zero or missing
            assert row["skipped"] and "p50_ms" not in row
        else:
            assert row["p50_ms"] > 0 and row["items_per_s"] > 0 and row["tflops"] > 0
    measured = {(b, p) for (b, p, _), r in rows.items() if "skipped" not in r}
    assert ("torch", "fp32") in measured and ("onnxruntime", "fp32") in measured
    assert rows[("onnxruntime", "fp32", 1)]["providers"] == ["CPUExecutionProvider"]
    for row in rows.values():  # every measurement says what else the machine was doing
        if "skipped" not in row:
            assert {"loadavg_before", "others_cpu_share", "contended"} <= set(row["machine"])
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in rows[("torch", "fp16", 1)]["skipped"]
    markdown = (tmp_path / "table3.md").read_text()
    assert "| 128×64 |" in markdown and "Skipped:" in markdown and "tensorrt fp16" in markdown
    assert "torch compile fp16 default" in markdown  # a GPU row, listed as skipped here
    assert (tmp_path / "table3.png").stat().st_size > 1000
    if not torch.cuda.is_available():  # the CPU target's ratio, timed again in turns
        turns = entry["in_turns"]
        others = [r for (b, p, n), r in rows.items() if n == 1 and (b, p) != ("torch", "fp32")]
        best = min((r for r in others if "skipped" not in r), key=lambda r: r["ms_per_image"])
        assert turns["best"] == f"{best['backend']} {best['precision']}"
        assert turns["rounds"] == 2 and turns["eager_p50_ms"] > 0 and turns["best_p50_ms"] > 0
        assert turns["ratio"] == pytest.approx(turns["eager_p50_ms"] / turns["best_p50_ms"], 1e-2)


def test_pipeline_and_http_quick(tmp_path):
    assert cli(["pipeline", "--quick", "--out", str(tmp_path)]) == 0
    pipeline = json.loads((tmp_path / "pipeline.json").read_text())
    torch_stages = set(pipeline["backends"]["torch"])
    assert {"decode", "network", "encode", "total"} <= torch_stages
    assert {"network: upload+normalize", "network: network", "network: copy"} <= torch_stages
    assert {"decode", "network", "encode", "total"} == set(pipeline["backends"]["onnxruntime"])
    if not torch.cuda.is_available():
        assert "total" in pipeline["backends"]["onnxruntime-int8"]
    assert set(pipeline["machine"]) == set(pipeline["segmenters"])
    assert cli(["http", "--quick", "--out", str(tmp_path)]) == 0
    http = json.loads((tmp_path / "http.json").read_text())
    assert [lv["concurrency"] for lv in http["levels"]] == [1, 2]
    assert all(lv["errors"] == 0 and lv["throughput_rps"] > 0 for lv in http["levels"])
    assert {"decode", "queue", "inference", "encode", "total"} <= set(
        http["levels"][0]["server_median_ms"]
    )


def test_eval_throughput_quick(tmp_path):
    assert cli(["eval", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "eval.json").read_text())
    assert results["images"] == 2 and results["images_per_s"] > 0
    assert set(results["seconds"]) == {"load", "inference", "scoring"}
    assert "| inference |" in (tmp_path / "eval.md").read_text()


def test_a_cuda_run_measures_no_cpu_row_and_no_tf32_as_fp32():
    """Rows are planned without running: a CUDA run skips the CPU ONNX Runtime row (it would be
    reported under the GPU's name), and the CUDA provider gets an fp32 row and a tf32 row."""
    from genadapt.benchmarks.table3 import BenchConfig, eval_backends

    entries = eval_backends(BenchConfig([(64, 32)], width=0.0625, device="cuda"), (64, 32))
    rows = {(b, p): f for b, p, f in entries}
    assert rows[("onnxruntime", "fp32")] == "a CPU row, skipped on a CUDA run"
    assert {("onnxruntime-cuda", "fp32"), ("onnxruntime-cuda", "tf32")} <= set(rows)


def test_suite_quick_writes_every_report(tmp_path):
    assert cli(["suite", "--quick", "--device", "cpu", "--out", str(tmp_path)]) == 0
    (folder,) = tmp_path.iterdir()  # named after this machine's device
    for name in ("table3", "pipeline", "http", "http-int8", "eval", "eval-int8"):
        assert json.loads((folder / f"{name}.json").read_text())
        assert (folder / f"{name}.md").read_text().strip()
    assert json.loads((folder / "eval.json").read_text())["images"] == 4
    int8 = json.loads((folder / "http-int8.json").read_text())  # the service on the INT8 graph
    assert [level["errors"] for level in int8["levels"]] == [0, 0]


def test_a_busy_neighbour_marks_a_measurement_contended_and_our_own_work_does_not():
    import subprocess
    import sys
    import time

    from genadapt.benchmarks.timing import watching_the_machine

    with watching_the_machine() as ours:
        deadline = time.perf_counter() + 0.6
        while time.perf_counter() < deadline:  # our own busy work
            pass
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        with watching_the_machine() as busy:
            time.sleep(0.8)
        with watching_the_machine([neighbour.pid]) as counted_as_ours:
            time.sleep(0.8)
    finally:
        neighbour.kill()
        neighbour.wait()
    assert busy["contended"] and busy["others_cpu_share"] > 0.3
    assert ours["others_cpu_share"] < busy["others_cpu_share"]
    assert counted_as_ours["others_cpu_share"] < busy["others_cpu_share"]
    assert "loadavg_before" in busy and "loadavg_after" in busy


def test_the_upsample_probe_times_both_upsamplers_and_restores_the_model():
    from genadapt.benchmarks import upsample_probe
    from genadapt.model import BilinearUpsample

    forward = BilinearUpsample.forward
    results = upsample_probe.run((64, 32), 0.0625, "cpu", reps=2, train=True)
    assert set(results["speedup"]) == {"forward", "train_full"}
    assert results["interpolation"]["forward"]["p50_ms"] > 0
    assert results["deconvolution"]["train_full"]["p50_ms"] > 0
    assert BilinearUpsample.forward is forward


def test_the_pipeline_times_the_services_own_stages(monkeypatch):
    """The benchmark runs `serve.pipeline`, the functions the service's route runs, so that it
    cannot time a path the service does not take (the first GPU run's pipeline decoded at full
    size and resized, which the service never does)."""
    from genadapt.benchmarks import pipeline
    from genadapt.benchmarks.common import QUICK_SIZE, QUICK_WIDTH, random_checkpoint
    from genadapt.serve import pipeline as service

    calls = []
    for stage in ("decode", "encode"):
        real = getattr(service.SegmentPipeline, stage)

        def recording(self, *args, _stage=stage, _real=real):
            calls.append(_stage)
            return _real(self, *args)

        monkeypatch.setattr(service.SegmentPipeline, stage, recording)
    checkpoint = random_checkpoint(QUICK_SIZE, QUICK_WIDTH)
    results = pipeline.run_pipeline(checkpoint, ["onnxruntime"], 1, "cpu")
    assert calls.count("encode") == 3 and calls.count("decode") >= 3  # 2 warm-ups and 1 timed
    assert results["backends"]["onnxruntime"]["decode"]["p50_ms"] > 0


def test_the_loader_benchmark_times_the_trainers_own_data_path(tmp_path):
    assert cli(["loader", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "loader.json").read_text())
    rows = {(r["resize"], r["workers"]): r for r in results["rows"]}
    assert set(rows) == {("cover", 0), ("cover", 1), ("authors", 0), ("authors", 1)}
    for row in rows.values():
        assert row["iterations_per_s"] > 0 and isinstance(row["keeps_up"], bool)
    assert rows[("authors", 1)]["crop"] == [80, 40] and rows[("cover", 1)]["crop"] is None
    assert rows[("cover", 1)]["cores_used"] == min(2, os.cpu_count())  # a worker per loader
    assert rows[("cover", 0)]["cores_used"] == 1 and rows[("cover", 0)]["cores_needed"] >= 1
    assert results["frame_sizes"]["gta5"] == [239, 132]  # GTA5's 1914×1052, × 1/8
    assert results["provenance"]["command"].startswith("genadapt-bench loader")
    assert "| authors | 1 |" in (tmp_path / "loader.md").read_text()


def test_int8_accuracy_exports_gates_and_scores_each_model(tmp_path):
    from genadapt.checkpoint import save_checkpoint

    from fake_datasets import write_cityscapes
    from helpers import make_checkpoint

    write_cityscapes(tmp_path / "cs", n=2, size=(128, 64))
    # A network with a clear winner at every pixel: INT8 keeps its labels, so the gate passes
    # (random weights sit on near-ties that any rounding flips).
    ckpt = save_checkpoint(make_checkpoint(winning_class=13), tmp_path / "run" / "checkpoint.pt")
    args = ["int8-accuracy", str(ckpt), "--root", str(tmp_path / "cs"), "--out", str(tmp_path)]
    assert cli(args) == 0
    (model,) = json.loads((tmp_path / "int8-accuracy.json").read_text())["models"]
    assert model["gate_passed"] and model["label_agreement"] >= 0.98
    assert model["delta"] == pytest.approx(model["miou_fp32"] - model["miou_int8"], abs=0.011)
    assert model["images"] == 4 and model["miou_fp32"] > 0
    assert f"| {ckpt} |" in (tmp_path / "int8-accuracy.md").read_text()


def test_the_http_client_keeps_its_connections_alive():
    import http.server
    import threading

    from genadapt.benchmarks.http_bench import run_http

    peers = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn

        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            peers.append(self.client_address)
            self.send_response(200)
            self.send_header("server-timing", "total;dur=2.0, inference;dur=1.0")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_http(f"http://127.0.0.1:{server.server_port}", b"jpeg", [2], 12)
    finally:
        server.shutdown()
    (level,) = result["levels"]
    assert level["errors"] == 0 and level["server_median_ms"]["total"] == 2.0
    assert len(peers) == 13 and len(set(peers)) <= 3  # warm-up + two client threads


def test_every_registered_benchmark_is_a_subcommand_with_its_own_arguments(capsys):
    from genadapt.benchmarks.cli import get_args_parser
    from genadapt.benchmarks.registry import registered

    benchmarks = registered()
    expected = {"table3", "pipeline", "http", "eval", "suite", "loader", "int8-accuracy",
                "gpu-check", "gpu-report", "upsample-probe", "openvino-probe"}  # fmt: skip
    assert expected <= set(benchmarks)
    parser = get_args_parser()
    for name in benchmarks:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"])
        assert done.value.code == 0 and f"genadapt-bench {name}" in capsys.readouterr().out


def test_a_probe_runs_as_a_benchmark_and_one_missing_its_library_says_so(tmp_path, capsys):
    assert cli(["upsample-probe", "--size", "64x32", "--width", "0.0625", "--reps", "2",
                "--device", "cpu", "--out", str(tmp_path)]) == 0  # fmt: skip
    probe = json.loads((tmp_path / "upsample-probe.json").read_text())
    assert set(probe["speedup"]) == {"forward"} and probe["provenance"]["command"]
    try:
        import openvino  # noqa: F401
    except ImportError:
        assert cli(["openvino-probe", "--out", str(tmp_path)]) == 2
        assert "pip install openvino" in capsys.readouterr().err


def test_the_label_benchmark_sets_ray_beside_predict(tmp_path):
    pytest.importorskip("ray")
    assert cli(["label", "--quick", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "label.json").read_text())["rows"]
    assert [r["command"] for r in rows] == ["genadapt-predict", "genadapt-label"]
    assert rows[0]["vs_predict"] == 1.0 and all(r["images_per_s"] > 0 for r in rows)
    assert rows[1]["start_s"] > 0  # Ray's start-up, reported beside the rate


def test_the_service_benchmark_measures_the_service_around_a_replayed_network(tmp_path):
    assert cli(["service", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "service.json").read_text())
    assert set(results["host_stages"]) == {"turbojpeg+isal", "pillow+isal", "pillow+zlib"}
    assert {"decode", "encode", "total"} <= set(results["host_stages"]["turbojpeg+isal"])
    assert results["decode_speedup_turbojpeg_vs_pillow"] > 0
    levels = results["http"]["levels"]
    assert [lv["concurrency"] for lv in levels] == [1, 2]
    assert all(lv["errors"] == 0 for lv in levels)
    assert "io_wait" in levels[0]["server_median_ms"] and results["host_ms"] > 0


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("Intel(R) Xeon(R) Processor (2 threads)", "intel-xeon-2-threads"),
        ("Intel(R) Xeon(R) Platinum 8480+ (16 threads)", "intel-xeon-platinum-8480-16-threads"),
        ("AMD EPYC 7B13 64-Core Processor (2 threads)", "amd-epyc-7b13-64-core-2-threads"),
        (
            "Intel(R) Core(TM) i7-9700K CPU @ 3.60GHz (8 threads)",
            "intel-core-i7-9700k-3-60ghz-8-threads",
        ),
        ("NVIDIA H200", "nvidia-h200"),
    ],
)
def test_the_suite_names_its_folder_after_the_device_without_trademark_noise(name, folder):
    from genadapt.benchmarks.timing import results_folder_name

    assert results_folder_name(name) == folder


def test_timing_in_turns_keeps_a_ratio_that_a_drifting_host_breaks_one_after_the_other():
    """A host that slows down 1.5× halfway: timed one after the other, the second function
    looks slower than it is; taking turns, both see the same host and the ratio holds."""
    from genadapt.benchmarks.timing import time_in_turns

    clock = {"calls": 0}

    def work(cost: float):
        def call():
            clock["calls"] += 1
            slow = 1.5 if clock["calls"] > 4 else 1.0  # the host's drift, in calls made
            time.sleep(cost * slow)

        return call

    eager, fast = work(0.02), work(0.01)  # truly 2×
    one_after_other = [time_calls(f, "cpu", 0, 4) for f in (eager, fast)]
    naive = np.median(one_after_other[0]) / np.median(one_after_other[1])
    clock["calls"] = 0
    samples = time_in_turns({"eager": eager, "fast": fast}, "cpu", rounds=8, warmup=0)
    in_turns = np.median(samples["eager"]) / np.median(samples["fast"])
    assert naive < 1.5  # the drift hid most of the 2×
    assert in_turns == pytest.approx(2.0, rel=0.15)
    assert len(samples["eager"]) == len(samples["fast"]) == 8


def test_the_cpu_verdict_goes_by_the_ratio_taken_in_turns():
    from genadapt.benchmarks.report import target_checks

    def row(backend, precision, ms):
        return {"backend": backend, "precision": precision, "batch": 1, "ms_per_image": ms}

    entry = {
        "size": [1024, 512],
        "eval": [row("torch", "fp32", 4000.0), row("onnxruntime labels", "int8", 1000.0)],
    }
    results = {"sizes": [entry], "config": {"device": "cpu"}}
    (line,) = target_checks(results)
    assert "4.00×" in line and line.endswith("SHORT")  # the rows alone: 4× < 5×
    entry["in_turns"] = {"best": "onnxruntime labels int8", "rounds": 5, "ratio": 5.2}
    (line,) = target_checks(results)
    assert "5.20× taking turns over 5 rounds (4.00× in the rows above)" in line
    assert line.endswith("met")


@pytest.mark.parametrize("flag", ["--reps", "--train-reps", "--turns"])
def test_table3_refuses_no_samples_in_one_line(flag, tmp_path, capsys):
    assert cli(["table3", flag, "0", "--sizes", "64x32", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{flag[2:].replace('-', '_')} must be at least 1, got 0" in err
    assert "Traceback" not in err and not (tmp_path / "table3.json").exists()
