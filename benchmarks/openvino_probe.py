"""OpenVINO beside ONNX Runtime on this CPU: the same fp32 and INT8 (QDQ) labels graphs, timed in
one run, to decide whether OpenVINO earns a backend (only if it beats ONNX Runtime INT8).

    pip install openvino   # not a genadapt dependency
    python -m genadapt.benchmarks.openvino_probe [--size 1024x512] [--width 1.0] [--reps 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from genadapt.benchmarks.timing import summarize, time_calls, watching_the_machine
from genadapt.checkpoint import Checkpoint
from genadapt.export.quantize import Calibration, quantize_labels_graph
from genadapt.labels import CITYSCAPES19
from genadapt.model import ModelConfig, build_model
from genadapt.onnx_graph import export_graph
from genadapt.runtime.ort_providers import import_onnxruntime


def run(size: tuple[int, int], width: float, reps: int) -> dict:
    import openvino as ov

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1024x512")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    w, _, h = args.size.partition("x")
    print(json.dumps(run((int(w), int(h)), args.width, args.reps), indent=2))


if __name__ == "__main__":
    main()
