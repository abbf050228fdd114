"""`genadapt-train`: train F+C with the method (or an ablation) and write a run folder.

    genadapt-train --preset cpu-demo --source-root DATA/gta5 --target-root DATA/cityscapes \\
                   --out runs/adapted [--variant full] [--config my.yaml] [--set key=value ...]
    genadapt-train --resume runs/adapted [--iterations 2000]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
import yaml

from genadapt.cli import add_device_argument, run_cli, setup_logging
from genadapt.datasets import DATASET_KINDS
from genadapt.errors import GenadaptError
from genadapt.trainer.config import (
    AMP_MODES,
    PRESETS,
    RESIZE_RULES,
    VARIANTS,
    VGG_LAYOUTS,
    ConfigError,
    TrainConfig,
    load_yaml,
    resolve_config,
)
from genadapt.trainer.run import RunFolder
from genadapt.trainer.train import build_data, train

log = logging.getLogger(__name__)
# Settings that may change when a run is resumed; anything else would change the experiment.
PAPER_PRESETS = ("paper", "paper-fast")
RESUMABLE_OVERRIDES = {
    "iterations", "device", "num_workers", "log_every", "tensorboard", "deterministic"
}  # fmt: skip


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genadapt-train", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="run folder (must be new or empty)")
    p.add_argument("--resume", type=Path, help="continue the run in this folder")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None)
    p.add_argument("--config", type=Path, default=None, help="YAML file of TrainConfig keys")
    p.add_argument("--variant", choices=VARIANTS)
    for role in ("source", "target"):
        p.add_argument(f"--{role}-dataset", dest=f"{role}_kind", choices=sorted(DATASET_KINDS),
                       help=f"the layout of the {role} dataset")  # fmt: skip
        p.add_argument(f"--{role}-root", dest=f"{role}_root", help=f"the {role} dataset's folder")
        # The spelling before every command took --ROLE-dataset; kept for scripts, not shown.
        p.add_argument(f"--{role}-kind", dest=f"{role}_kind", help=argparse.SUPPRESS)
    p.add_argument("--label-space", dest="label_space")
    p.add_argument("--iterations", type=int)
    p.add_argument("--width", type=float)
    p.add_argument("--padding", choices=("pad1", "pad100"))
    p.add_argument("--size", help="WxH images are resized to, e.g. 1024x512")
    p.add_argument("--crop", help="WxH random crop, e.g. 640x320")
    p.add_argument("--seed", type=int)
    add_device_argument(p, default=None, indexed=True)
    p.add_argument("--vgg-weights", dest="vgg_weights", help="local ImageNet VGG16 weights")
    p.add_argument(
        "--vgg-layout",
        dest="vgg_layout",
        choices=VGG_LAYOUTS,
        help="the input the VGG16 weights expect: torchvision (RGB, normalized) or caffe (BGR, "
        "0..255; the authors' vgg16_from_caffe.pth); auto reads it from conv1_1 (default)",
    )
    p.add_argument(
        "--resize",
        choices=RESIZE_RULES,
        help="how training frames reach --size: cover (aspect kept, default), stretch, or "
        "authors (GTA5 to 1280 wide, Cityscapes/SYNTHIA at full scale; needs --crop)",
    )
    p.add_argument(
        "--amp", choices=AMP_MODES, help="bf16: bf16 autocast on CUDA (a deviation); off: fp32"
    )
    p.add_argument(
        "--deterministic",
        action="store_const",
        const=True,
        help="deterministic kernels on CUDA (no cuDNN benchmark): bit-identical resumes there",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any TrainConfig key, e.g. --set alpha=0.2 (repeatable)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def collect_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given that name a TrainConfig key (the parser is the one list of them), then
    every --set KEY=VALUE."""
    keys = {f.name for f in fields(TrainConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in keys and v is not None}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def main(args: argparse.Namespace) -> int:
    overrides = collect_overrides(args)
    if args.resume:
        run = RunFolder(args.resume)
        run.check_resumable()
        refused = sorted(set(overrides) - RESUMABLE_OVERRIDES)
        if refused or args.preset or args.config:
            raise ConfigError(
                f"a resumed run keeps its config; only {sorted(RESUMABLE_OVERRIDES)} may change"
            )
        saved = load_yaml(run.config_path)
        # Runs from before `loss_reduction` existed trained with per-pixel means: keep them so.
        saved.setdefault("loss_reduction", "mean")
        config = resolve_config(None, None, {**saved, **overrides})
    else:
        if args.out is None:
            raise ConfigError("give --out RUN_DIR for a new run, or --resume RUN_DIR")
        config = resolve_config(args.preset, args.config, overrides)
        run = RunFolder(args.out)
        if args.preset in PAPER_PRESETS and not config.vgg_weights:
            # The paper's numbers start F from ImageNet; from scratch they are not reproducible.
            raise ConfigError(
                f"the {args.preset!r} preset starts F from ImageNet VGG16, as the paper: give "
                "--vgg-weights FILE (torchvision or Caffe layout), or --vgg-weights scratch to "
                "train from scratch knowingly"
            )
    for key in ("source_root", "target_root"):
        if not getattr(config, key) and not (
            key == "target_root" and config.variant == "source-only"
        ):
            raise ConfigError(f"{key} is not set (--{key.replace('_', '-')} DIR)")
    build_data(config)  # a missing or malformed data folder fails before the run folder exists
    log.info(
        "loss weights (%s reduction) act as per-pixel means with %s",
        config.loss_reduction,
        ", ".join(f"{k} {v:.3g}" for k, v in config.effective_weights().items()),
    )
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun: rank 0 writes
        if not args.resume:
            run.create(config)
        run.record_provenance()  # one record per start: a resumed run may be on other code
    try:
        metrics = train(config, run, resume=bool(args.resume))
    except torch.OutOfMemoryError:
        raise GenadaptError(
            f"out of memory at size {config.input_size[0]}x{config.input_size[1]}, width "
            f"{config.width}, batch {config.batch_size}; reduce --size/--crop, --width or "
            f"batch_size (last checkpoint kept in {run.path})"
        ) from None
    log.info("run folder: %s (checkpoint.pt, metrics.jsonl, curves.png)", run.path)
    return 130 if metrics.get("interrupted") else 0


def cli(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_cli("genadapt-train", lambda: main(args), argv)


if __name__ == "__main__":
    sys.exit(cli())
