"""The benchmarks `genadapt-bench` offers. Each module in MODULES defines BENCHMARKS, a list of
`Benchmark`: a name, one line of help, a function that adds its arguments, and a run that
writes its reports (JSON and Markdown through `common.Reports`) and returns the results. A new
benchmark is a module with these and one line here; the command line, its help and the
documentation's command reference follow."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MODULES = (
    "genadapt.benchmarks.commands",  # table3, pipeline, http, eval, suite, gpu-check, gpu-report
    "genadapt.benchmarks.loader_bench",
    "genadapt.benchmarks.int8_accuracy",
    "genadapt.benchmarks.label_bench",
    "genadapt.benchmarks.service_bench",
    "genadapt.benchmarks.upsample_probe",
    "genadapt.benchmarks.openvino_probe",
)


@dataclass(frozen=True)
class Benchmark:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Any]


def registered() -> dict[str, Benchmark]:
    """Every benchmark of every module in MODULES, by name, in their order."""
    found: dict[str, Benchmark] = {}
    for module in MODULES:
        for benchmark in importlib.import_module(module).BENCHMARKS:
            if benchmark.name in found:
                raise RuntimeError(f"two benchmarks are named {benchmark.name!r} ({module})")
            found[benchmark.name] = benchmark
    return found


def add_device_and_quick(parser: argparse.ArgumentParser) -> None:
    """--device and --quick, the same in every benchmark that takes them."""
    from genadapt.cli import add_device_argument

    add_device_argument(parser, indexed=True)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, under a minute on a CPU")
