"""What the benchmarks share: where reports go, random F+C, sizes and devices from flags."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from genadapt.checkpoint import Checkpoint, load_checkpoint
from genadapt.fileio import atomic_write_bytes
from genadapt.labels import CITYSCAPES19
from genadapt.model import ModelConfig, build_model
from genadapt.provenance import footnote, provenance
from genadapt.runtime.backends import BACKENDS

PAPER_SIZES = [(512, 256), (640, 320), (1024, 512)]
# What the host benchmarks run a checkpoint on: every registered backend that runs one (a
# TensorRT engine needs an export first), and ONNX Runtime on the INT8 graph, a CPU's option.
INT8 = "onnxruntime-int8"
HOST_BACKENDS = (*(name for name, b in BACKENDS.items() if ".pt" in b.suffixes), INT8)
QUICK_SIZE, QUICK_WIDTH = (128, 64), 0.125  # --quick: well under a minute on 2 CPU cores


@dataclass
class Reports:
    """Where a benchmark's JSON and Markdown go."""

    out: Path

    def write(self, name: str, data: dict, markdown: str) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        # A measurement made elsewhere (a GPU check's archive) keeps the record it came with.
        data = {**data, "provenance": data.get("provenance") or provenance()}
        atomic_write_bytes(self.out / f"{name}.json", json.dumps(data, indent=2).encode())
        markdown = f"{markdown.rstrip()}\n\n{footnote(data['provenance'])}\n"
        atomic_write_bytes(self.out / f"{name}.md", markdown.encode())
        print(markdown)
        return data


def random_checkpoint(size: tuple[int, int], width: float) -> Checkpoint:
    """F+C with random weights: timings do not depend on what the weights are."""
    return Checkpoint.from_model(build_model(ModelConfig(19, width, "pad1")), CITYSCAPES19, size)


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def resolve_device(arg: str) -> str:
    """auto → cuda when PyTorch sees a GPU, else cpu; anything else as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if arg == "auto" else arg


def checkpoint_of(args: argparse.Namespace) -> Checkpoint:
    """--model, or random F+C at --size/--width (the quick size with --quick)."""
    if getattr(args, "model", None):
        return load_checkpoint(args.model)
    if args.quick:
        return random_checkpoint(QUICK_SIZE, QUICK_WIDTH)
    return random_checkpoint(parse_size(args.size), args.width)
