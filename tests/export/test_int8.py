"""INT8 for CPUs: a QDQ graph beside the fp32 one, calibrated, recorded in the sidecar, gated
like every artifact (and refused when it loses accuracy), and chosen on a CPU when an export
folder is given."""

from __future__ import annotations

import json
import logging
import time

import onnx
import pytest
from onnx import TensorProto

from genadapt.checkpoint import save_checkpoint
from genadapt.export import parity
from genadapt.export.cli import cli
from genadapt.export.exporter import ExportOptions, run_export
from genadapt.export.quantize import Calibration
from genadapt.runtime import load_segmenter
from genadapt.sidecar import load_sidecar

from helpers import trained_like_checkpoint

INT8 = "model.labels.int8.onnx"


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    """An INT8 export of a random tiny network, whose near-ties cost more agreement than a
    trained network's would: the gate is lowered here to test the mechanism, not the quality
    (the README reports what a trained model measures)."""
    root = tmp_path_factory.mktemp("int8")
    checkpoint = save_checkpoint(trained_like_checkpoint(), root / "c.pt")
    patch = pytest.MonkeyPatch()
    patch.setitem(parity.THRESHOLDS, "int8", (None, 0.9, 5.0))
    try:
        options = ExportOptions(
            flavours=("labels",),
            parity_images=3,
            int8=True,
            calibration=Calibration(method="minmax", count=6),
        )
        run_export(checkpoint, root / "out", options)
    finally:
        patch.undo()
    return root / "out"


def test_int8_is_a_qdq_graph_with_the_logits_layers_in_float(int8_export):
    proto = onnx.load(str(int8_export / INT8))
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    types = {init.name: init.data_type for init in proto.graph.initializer}
    assert any(t == TensorProto.INT8 for t in types.values())  # quantized weights
    for node in proto.graph.node:
        if node.op_type == "Conv" and "score" in node.name:  # the logits stay float
            weight = node.input[1]
            assert types.get(weight) == TensorProto.FLOAT, (node.name, weight)


def test_the_sidecar_records_how_it_was_made_and_its_gate(int8_export):
    artifact = load_sidecar(int8_export / INT8).artifact(INT8)
    assert artifact.precision == "int8" and artifact.flavour == "labels"
    assert artifact.quantization["method"] == "minmax"
    assert artifact.quantization["images"] == 6
    assert artifact.quantization["source"] == "built-in scenes"
    assert artifact.parity["passed"] and artifact.parity["precision"] == "int8"


def test_an_export_folder_runs_int8_on_a_cpu_and_says_so(int8_export, caplog):
    caplog.set_level(logging.INFO)
    segmenter = load_segmenter(int8_export)
    assert segmenter.file == INT8 and segmenter.spec.precision == "int8"
    assert segmenter.describe()["file"] == INT8
    assert "INT8 on a CPU" in caplog.text
    assert load_segmenter(int8_export / "model.labels.onnx").file == "model.labels.onnx"


def test_an_int8_graph_that_failed_its_gate_is_not_chosen(int8_export, tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for path in int8_export.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    sidecar = json.loads((folder / "model.json").read_text())
    sidecar["artifacts"][INT8]["parity"]["passed"] = False
    (folder / "model.json").write_text(json.dumps(sidecar))
    assert load_segmenter(folder).file == "model.labels.onnx"


def test_the_gate_refuses_an_int8_graph_that_lost_accuracy(tmp_path, capsys):
    checkpoint = save_checkpoint(trained_like_checkpoint(), tmp_path / "c.pt")
    out = tmp_path / "out"
    status = cli(
        [
            str(checkpoint),
            "--out",
            str(out),
            "--flavour",
            "labels",
            "--int8",
            "--calibration-images",
            "4",
            "--parity-images",
            "3",
        ]
    )
    assert status == 2
    assert (
        "model.labels.int8.onnx failed the parity gate: labels agree on" in capsys.readouterr().err
    )
    assert not out.exists() or not any(out.iterdir())  # nothing published, fp32 included


def test_the_service_on_an_export_folder_runs_int8_and_shows_it(int8_export):
    from fastapi.testclient import TestClient

    from genadapt.serve.app import create_app
    from genadapt.serve.settings import ServeSettings

    with TestClient(create_app(ServeSettings(model=str(int8_export)))) as client:
        for _ in range(300):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        info = client.get("/v1/model").json()
    assert info["file"] == INT8 and info["precision"] == "int8"
    assert len(info["model_sha256"]) == 64
