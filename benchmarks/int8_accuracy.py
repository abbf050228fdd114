"""`genadapt-bench int8-accuracy`: what INT8 costs in accuracy, on trained models.

Each checkpoint is exported as a user would (`genadapt-export --flavour labels --int8`, its
parity gate included), then the fp32 labels graph and the INT8 graph are both evaluated on a
labelled dataset with genadapt-eval's protocol. Reported per model: mIoU of each, their
difference, and the gate's label agreement.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from genadapt.benchmarks.common import Reports
from genadapt.benchmarks.registry import Benchmark
from genadapt.cli import add_dataset_arguments
from genadapt.datasets import SegmentationDataset
from genadapt.evaluate import evaluate
from genadapt.export.exporter import INT8_FILE, ExportOptions, run_export
from genadapt.runtime import RuntimeOptions, load_segmenter

SUBSET = "cityscapes19"


def run_int8_accuracy(
    checkpoints: list[Path], kind: str, root: Path, split: str | None = None
) -> dict:
    """For each checkpoint: export with --int8 (gated on `root`), evaluate fp32 and INT8."""
    models = []
    for path in checkpoints:
        with tempfile.TemporaryDirectory(prefix="genadapt-int8-accuracy-") as tmp:
            options = ExportOptions(
                flavours=("labels",), int8=True, eval_kind=kind, eval_root=str(root),
                eval_limit=None,
            )  # fmt: skip
            sidecar = run_export(path, Path(tmp), options)
            scores = {}
            for precision, name in (("fp32", "model.labels.onnx"), ("int8", INT8_FILE)):
                segmenter = load_segmenter(
                    Path(tmp) / name, RuntimeOptions(backend="onnxruntime", device="cpu")
                )
                dataset = SegmentationDataset(
                    kind, root, split, label_space=segmenter.spec.label_space
                )
                result = evaluate(segmenter, dataset, num_workers=1, progress=False)
                scores[precision] = result.to_dict()["miou"][SUBSET]  # as genadapt-eval reports
            gate = sidecar.artifacts[INT8_FILE].parity
            models.append(
                {
                    "checkpoint": str(path),
                    "miou_fp32": scores["fp32"],
                    "miou_int8": scores["int8"],
                    "delta": round(scores["fp32"] - scores["int8"], 2),
                    "label_agreement": gate.get("label_agreement"),
                    "gate_passed": gate.get("passed"),
                    "images": result.images,
                }
            )
    return {"dataset": {"kind": kind, "root": str(root), "split": split}, "models": models}


def int8_accuracy_markdown(results: dict) -> str:
    lines = [
        "| model | mIoU fp32 | mIoU INT8 | Δ (fp32 − INT8) | labels agree (gate) |",
        "|---|---|---|---|---|",
    ]
    for model in results["models"]:
        agree = model["label_agreement"]
        agree_cell = f"{100 * agree:.2f}%" if agree is not None else "–"
        lines.append(
            f"| {model['checkpoint']} | {model['miou_fp32']:.2f} | {model['miou_int8']:.2f} | "
            f"{model['delta']:+.2f} | {agree_cell} |"
        )
    return "\n".join(lines) + "\n"


def int8_accuracy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoints", type=Path, nargs="+", help="trained checkpoint.pt files")
    add_dataset_arguments(p, default_kind="cityscapes")
    p.add_argument("--split", default=None, help="default: the kind's (cityscapes: val)")
    p.add_argument("--out", type=Path, required=True)


def cmd_int8_accuracy(args: argparse.Namespace) -> dict:
    results = run_int8_accuracy(args.checkpoints, args.dataset, args.root, args.split)
    return Reports(args.out).write("int8-accuracy", results, int8_accuracy_markdown(results))


BENCHMARKS = [
    Benchmark("int8-accuracy", "mIoU of trained models in fp32 and INT8",
              int8_accuracy_arguments, cmd_int8_accuracy),
]  # fmt: skip
