"""The GPU targets read off the reports: met, SHORT or not measured, never a pass by default."""

from __future__ import annotations

import json

from genadapt.benchmarks.targets import TARGETS, assess_targets, targets_markdown


def _reports(tmp_path, size=(1024, 512), *, torch_ms=1.5, ort_ms=2.7, http_p50=14.0, rps=120.0):
    def row(backend, precision, p50, batch=1):
        return {"backend": backend, "precision": precision, "batch": batch, "p50_ms": p50}

    table3 = {
        "sizes": [
            {"size": [512, 256], "eval": [row("torch", "fp16", 0.4)]},  # another size: ignored
            {
                "size": [1024, 512],
                "eval": [
                    row("torch", "fp32", 9.0),
                    row("torch", "fp16+cudagraph", torch_ms),
                    row("torch", "fp16+cudagraph", 0.9, batch=4),  # batch 4: ignored
                    row("onnxruntime-cuda", "fp32", 8.0),
                    row("onnxruntime-cuda", "fp16+nhwc", ort_ms),
                    {"backend": "tensorrt", "precision": "fp16", "batch": 1, "skipped": "absent"},
                ],
            },
        ]
    }
    pipeline = {
        "host_to_host": {"torch bilinear": {"p50_ms": 3.4}, "torch nearest": {"p50_ms": 2.1}},
        "backends": {
            "torch": {"decode": {"p50_ms": 3.5}, "encode": {"p50_ms": 0.7}},
            "onnxruntime": {"decode": {"p50_ms": 3.1}, "encode": {"p50_ms": 0.6}},
            "tensorrt": {"skipped": "absent"},
        },
    }
    http = {
        "levels": [
            {"concurrency": 1, "latency": {"p50_ms": http_p50}, "throughput_rps": 70.0},
            {"concurrency": 16, "latency": {"p50_ms": 99.0}, "throughput_rps": rps},
        ]
    }
    checks = {
        "plan": {"size": list(size)},
        "checks": {
            "torch-vs-cpu": {"status": "PASS", "label_agreement": 0.999},
            "onnxruntime-vs-cpu": {
                "status": "PASS", "label_agreement": 1.0, "fp16_label_agreement": 0.9981,
            },
            "paper-iteration-pad100": {"status": "PASS", "p50_ms": 95.0},
        },
    }  # fmt: skip
    for name, data in (("table3", table3), ("pipeline", pipeline), ("http", http),
                       ("checks", checks)):  # fmt: skip
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    return tmp_path


def _by_name(result):
    return {row["name"]: row for row in result["targets"]}


def test_each_target_is_read_from_its_report_and_judged(tmp_path):
    rows = list(_by_name(assess_targets(_reports(tmp_path))).values())
    assert [r["name"] for r in rows] == [t.name for t in TARGETS]
    measured = [r["measured"] for r in rows]
    assert measured == [1.5, 3.4, 2.1, 95.0, 1.8, 14.0, 120.0, 0.9981, 3.7]
    status = [r["status"] for r in rows]
    assert status == ["SHORT", "SHORT", "met", "met", "SHORT", "SHORT", "SHORT", "met", "met"]
    assert [r["goal_met"] for r in rows[:4]] == [False, False, False, False]


def test_a_missing_report_is_not_measured_not_a_pass(tmp_path):
    reports = _reports(tmp_path)
    (reports / "http.json").unlink()
    (reports / "pipeline.json").write_text(json.dumps({"host_to_host": {}}))
    rows = _by_name(assess_targets(reports))
    http = [r for name, r in rows.items() if name.startswith("HTTP")]
    assert {r["status"] for r in http} == {"not measured"}
    assert rows[TARGETS[-1].name]["status"] == "not measured"  # no pipeline backends
    assert {r["measured"] for r in http} == {None}
    assert rows[TARGETS[1].name]["status"] == "not measured"
    assert "not measured" in targets_markdown(assess_targets(reports))


def test_a_run_at_other_sizes_measures_no_target(tmp_path):
    result = assess_targets(_reports(tmp_path, size=(64, 32)))
    assert {r["status"] for r in result["targets"]} == {"not measured"}
    assert "ran at [64, 32]" in result["targets"][0]["note"]


def test_the_markdown_marks_goals(tmp_path):
    text = targets_markdown(assess_targets(_reports(tmp_path, torch_ms=0.9)))
    assert "| met | <= 1 (met) |" in text and "SHORT" in text
