"""OpenVINO beside ONNX Runtime on this CPU: the same fp32 and INT8 (QDQ) labels graphs, timed in
one run, to decide whether OpenVINO earns a backend (only if it beats ONNX Runtime INT8).

    pip install openvino   # not a genadapt dependency
    genadapt-bench openvino-probe [--size 1024x512] [--width 1.0] [--reps 10] --out DIR
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from genadapt.benchmarks.common import Reports, parse_size
from genadapt.benchmarks.registry import Benchmark
from genadapt.benchmarks.timing import summarize, time_calls, watching_the_machine
from genadapt.checkpoint import Checkpoint
from genadapt.errors import GenadaptError
from genadapt.export.quantize import Calibration, quantize_labels_graph
from genadapt.labels import CITYSCAPES19
from genadapt.model import ModelConfig, build_model
from genadapt.onnx_graph import export_graph
from genadapt.runtime.ort_providers import import_onnxruntime


def run(size: tuple[int, int], width: float, reps: int) -> dict:
    try:
        import openvino as ov
    except ImportError:
        raise GenadaptError("the OpenVINO probe needs OpenVINO: pip install openvino") from None

    model = build_model(ModelConfig(19, width, "pad1"))
    checkpoint = Checkpoint.from_model(model, CITYSCAPES19, size)
    fp32 = export_graph(checkpoint.build_model(), "labels", checkpoint.spec)
    int8, _ = quantize_labels_graph(
        fp32.data, checkpoint.spec, fp32.io.input_name, Calibration(method="minmax", count=4)
    )
    image = np.random.default_rng(0).integers(0, 256, (1, size[1], size[0], 3), dtype=np.uint8)
    ort = import_onnxruntime()
    core = ov.Core()
    results: dict = {
        "size": list(size),
        "width": width,
        "openvino": ov.__version__,
        "onnxruntime": ort.__version__,
        "rows": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for precision, data in (("fp32", fp32.data), ("int8", int8)):
            path = Path(tmp) / f"{precision}.onnx"
            path.write_bytes(data)
            session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            compiled = core.compile_model(
                core.read_model(str(path)), "CPU", {"PERFORMANCE_HINT": "LATENCY"}
            )
            request = compiled.create_infer_request()
            runners = {
                f"onnxruntime {precision}": lambda s=session: s.run(None, {"image": image}),
                f"openvino {precision}": lambda r=request: r.infer({0: image}),
            }
            for name, fn in runners.items():
                with watching_the_machine() as machine:
                    samples = time_calls(fn, "cpu", warmup=2, reps=reps, budget_s=120)
                results["rows"][name] = summarize(samples) | {"machine": machine}
    return results


def openvino_probe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", default="1024x512")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--out", type=Path, required=True)


def cmd_openvino_probe(args: argparse.Namespace) -> dict:
    results = run(parse_size(args.size), args.width, args.reps)
    return Reports(args.out).write(
        "openvino-probe",
        results,
        f"# OpenVINO beside ONNX Runtime\n\n```json\n{json.dumps(results, indent=2)}\n```\n",
    )


BENCHMARKS = [
    Benchmark("openvino-probe", "OpenVINO beside ONNX Runtime on this CPU (pip install openvino)",
              openvino_probe_arguments, cmd_openvino_probe),
]  # fmt: skip
