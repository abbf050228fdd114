"""`genadapt-bench BENCHMARK ...`: every benchmark of the registry, each with its own arguments.
(benchmarks/registry.py: table3, pipeline, http, eval, suite, loader, int8-accuracy, gpu-check,
gpu-report and the probes).

    genadapt-bench table3 [--sizes 512x256 640x320 1024x512] [--width 1.0] [--quick] --out DIR
    genadapt-bench pipeline [--model CKPT] [--quick] --out DIR
    genadapt-bench http [--url URL | --model MODEL] [--concurrency 1 2 4 8] --out DIR
    genadapt-bench eval [--model CKPT] [--images 8] --out DIR   # evaluation throughput
    genadapt-bench suite [--out benchmarks/results]   # all of them, sized for this machine
    genadapt-bench gpu-check --out DIR   # every GPU path, PASS/FAIL each (benchmarks/gpu_check.sh)

Results are JSON plus Markdown (and a PNG chart for table3) in --out.
"""

from __future__ import annotations

import argparse
import sys

from genadapt.benchmarks.registry import registered
from genadapt.cli import run_cli, setup_logging


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genadapt-bench", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    for benchmark in registered().values():
        benchmark.add_arguments(sub.add_parser(benchmark.name, help=benchmark.help))
    return p


def cli(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    run = registered()[args.command].run
    return run_cli(f"genadapt-bench {args.command}", lambda: run(args) and 0, argv)


if __name__ == "__main__":
    sys.exit(cli())
