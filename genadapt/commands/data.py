"""`genadapt-data`: dataset tools.

genadapt-data check --dataset KIND --root ROOT [--split SPLIT] [--json PATH]
genadapt-data scenes --out DIR [--size 512x256] [--source N] ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from genadapt.cli import add_dataset_arguments, run_cli, setup_logging
from genadapt.data_check import check_dataset
from genadapt.datasets import get_dataset_kind
from genadapt.errors import GenadaptError
from genadapt.fileio import atomic_write_bytes
from genadapt.scenes.generate import generate_scenes


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genadapt-data", description="Dataset tools.")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="count images and labels, find missing pairs, size mismatches, unreadable files "
        "and invalid label values",
    )
    add_dataset_arguments(check)
    check.add_argument("--split", default=None, help="cityscapes: train/val, camvid: train/test")
    check.add_argument("--workers", type=int, default=4)
    check.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    scenes = commands.add_parser(
        "scenes",
        help="generate the built-in synthetic (GTA5 layout) → photographic (Cityscapes layout) "
        "street scenes, plus an unseen third look and an optional fourth one for tuning",
    )
    scenes.add_argument("--out", type=Path, required=True)
    scenes.add_argument("--size", default="512x256", help="WxH, up to 2048x1024")
    scenes.add_argument("--source", type=int, default=500, help="labeled source images")
    scenes.add_argument("--target-train", type=int, default=500, help="target training images")
    scenes.add_argument("--target-val", type=int, default=100)
    scenes.add_argument("--unseen", type=int, default=100, help="unseen-look evaluation images")
    scenes.add_argument(
        "--tune-train",
        type=int,
        default=0,
        help="images of a fourth look for choosing settings (its train split, unlabelled use)",
    )
    scenes.add_argument(
        "--tune-val", type=int, default=0, help="labelled images of the tuning look for scoring"
    )
    scenes.add_argument("--seed", type=int, default=0)
    scenes.add_argument("--workers", type=int, default=2)
    return parser


def main_check(args: argparse.Namespace) -> int:
    report = check_dataset(get_dataset_kind(args.dataset), args.root, args.split, args.workers)
    print(report.to_text())
    if args.json:
        payload = {**dataclasses.asdict(report), "defects": report.defects}
        atomic_write_bytes(args.json, json.dumps(payload, indent=2).encode())
    return 0 if report.defects == 0 else 1


def main_scenes(args: argparse.Namespace) -> int:
    width, _, height = args.size.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        raise GenadaptError(f"--size must be WIDTHxHEIGHT, got {args.size!r}") from None
    generate_scenes(
        args.out,
        size,
        args.source,
        args.target_train,
        args.target_val,
        args.unseen,
        args.seed,
        args.workers,
        args.tune_train,
        args.tune_val,
    )
    return 0


def cli(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    commands = {"check": main_check, "scenes": main_scenes}
    return run_cli(f"genadapt-data {args.command}", lambda: commands[args.command](args), argv)


if __name__ == "__main__":
    sys.exit(cli())
