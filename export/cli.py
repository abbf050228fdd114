"""`genadapt-export CHECKPOINT --out DIR`: ONNX (logits and labels flavours), optionally a
TensorRT engine and a Triton repository, every artifact checked against PyTorch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from genadapt.cli import add_dataset_arguments, dataset_argument, run_cli, setup_logging
from genadapt.export.exporter import ExportOptions, run_export
from genadapt.export.quantize import CALIBRATION_METHODS, Calibration
from genadapt.export.tensorrt_build import PRECISIONS
from genadapt.imaging import UPSAMPLE_MODES
from genadapt.onnx_graph import FLAVOURS


def get_args_parser() -> argparse.ArgumentParser:
    defaults = ExportOptions()  # the one place the defaults are written
    p = argparse.ArgumentParser(prog="genadapt-export", description=__doc__)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--flavour", nargs="+", choices=FLAVOURS, default=list(defaults.flavours))
    p.add_argument("--opset", type=int, default=defaults.opset)
    p.add_argument(
        "--upsample",
        choices=UPSAMPLE_MODES,
        default=defaults.upsample,
        help="baked into the labels flavour",
    )
    p.add_argument("--tensorrt", action="store_true", help="also build model.engine (needs a GPU)")
    p.add_argument(
        "--precision", choices=PRECISIONS, default=defaults.precision, help="of the engine"
    )
    p.add_argument("--max-batch", type=int, default=defaults.max_batch)
    p.add_argument("--triton", action="store_true", help="also write a Triton model repository")
    p.add_argument("--parity-images", type=int, default=defaults.parity_images)
    # Optional: also gate on the mIoU delta over a labelled dataset.
    add_dataset_arguments(p, "eval", required=False)
    p.add_argument("--eval-limit", type=int, default=defaults.eval_limit)
    calibration = defaults.calibration
    p.add_argument(
        "--int8",
        action="store_true",
        help="also write model.labels.int8.onnx for CPUs (gated: ≥98%% labels agree)",
    )
    # INT8 calibration images (default: the built-in target-look scenes).
    add_dataset_arguments(p, "calibration", required=False)
    p.add_argument("--calibration-images", type=int, default=calibration.count)
    p.add_argument("--calibration-method", choices=CALIBRATION_METHODS, default=calibration.method)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(args: argparse.Namespace) -> int:
    evaluation = dataset_argument(args, "eval")
    calibration = dataset_argument(args, "calibration")
    options = ExportOptions(
        flavours=tuple(args.flavour),
        opset=args.opset,
        upsample=args.upsample,
        tensorrt=args.tensorrt,
        precision=args.precision,
        max_batch=args.max_batch,
        triton=args.triton,
        parity_images=args.parity_images,
        eval_kind=evaluation[0] if evaluation else None,
        eval_root=evaluation[1] if evaluation else None,
        eval_limit=args.eval_limit,
        int8=args.int8,
        calibration=Calibration(
            method=args.calibration_method,
            count=args.calibration_images,
            dataset_kind=calibration[0] if calibration else None,
            dataset_root=calibration[1] if calibration else None,
        ),
    )
    sidecar = run_export(args.checkpoint, args.out, options)
    for name, artifact in sidecar.artifacts.items():
        agree, delta = artifact.parity["label_agreement"], artifact.parity["miou_delta"]
        shapes = f"{artifact.input_shape} → {artifact.output_shape}"
        print(f"{name}: {shapes}; parity: labels agree {100 * agree:.3f}%, mIoU Δ {delta:.3f}")
    print(json.dumps({"out": str(args.out), "artifacts": list(sidecar.artifacts)}))
    return 0


def cli(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_cli("genadapt-export", lambda: main(args), argv)


if __name__ == "__main__":
    sys.exit(cli())
