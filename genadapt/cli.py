"""What every genadapt command shares: logging set-up, errors as one line (never a traceback),
and the arguments that name a device, a model's run-time options and a dataset, spelt one way
in every command."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genadapt.errors import GenadaptError
from genadapt.provenance import running_command

if TYPE_CHECKING:
    from genadapt.runtime.options import RuntimeOptions

log = logging.getLogger("genadapt")

# Errors that mean bad input or environment; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (GenadaptError, OSError, ValueError)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def run_cli(prog: str, main: Callable[[], int], argv: list[str] | None = None) -> int:
    """Run `main`, turning a user error into `prog: error: ...` and exit status 2.

    `argv` (default: this process's arguments) is the command that result files record as
    their provenance. Set GENADAPT_DEBUG=1 to see the full traceback instead.
    """
    try:
        with running_command([prog.split()[0], *(sys.argv[1:] if argv is None else argv)]):
            return main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if os.environ.get("GENADAPT_DEBUG"):
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


DEVICE_HELP = "auto (a CUDA GPU when there is one), cpu, or cuda (an error without a GPU)"


def device_type(indexed: bool) -> Callable[[str], str]:
    """argparse type of --device: auto, cpu, cuda, and cuda:N where a command takes an index."""
    pattern = r"auto|cpu|cuda(:\d+)?" if indexed else r"auto|cpu|cuda"

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            forms = "auto, cpu, cuda or cuda:N" if indexed else "auto, cpu or cuda"
            raise argparse.ArgumentTypeError(f"{value!r} is not a device: use {forms}")
        return value

    return check


def add_device_argument(
    parser: argparse.ArgumentParser, default: str | None = "auto", indexed: bool = False
) -> None:
    """--device, the same in every command (`indexed`: cuda:N is allowed too)."""
    extra = "; cuda:N picks a GPU" if indexed else ""
    parser.add_argument(
        "--device", type=device_type(indexed), default=default, help=DEVICE_HELP + extra
    )


def add_runtime_arguments(
    parser: argparse.ArgumentParser, precision: bool = False, defaults: bool = True
) -> None:
    """--backend, --device and --upsample (and --precision) for a command that runs a model,
    with the choices of `RuntimeOptions`; `defaults=False` leaves unset flags None, so that a
    command with its own layered settings (genadapt-serve) can tell them apart."""
    from genadapt.imaging import UPSAMPLE_MODES
    from genadapt.runtime.backends import backend_names
    from genadapt.runtime.options import COMPILE_MODES, GPU_PRECISIONS, RuntimeOptions

    default = RuntimeOptions() if defaults else None
    parser.add_argument(
        "--backend",
        choices=backend_names(),
        default=default and default.backend,
        help="what runs the model; auto picks by the file and this machine",
    )
    add_device_argument(parser, default and default.device)
    parser.add_argument(
        "--upsample",
        choices=UPSAMPLE_MODES,
        default=default and default.upsample,
        help="how logits reach the output size (a checkpoint run here)",
    )
    parser.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default=None,
        help="torch.compile the network in this mode (PyTorch backend; compiled once, cached)",
    )
    if precision:
        parser.add_argument(
            "--precision",
            choices=GPU_PRECISIONS,
            default=default and default.precision,
            help="what a GPU computes in (a CPU runs the artifact's own)",
        )


def runtime_options(args: argparse.Namespace, **more: Any) -> RuntimeOptions:
    """The `RuntimeOptions` of parsed arguments (those left unset keep their defaults)."""
    from genadapt.runtime.options import RuntimeOptions

    names = ("backend", "device", "upsample", "precision", "compile")
    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return RuntimeOptions(**given, **more)


def add_dataset_arguments(
    parser: argparse.ArgumentParser,
    role: str = "",
    required: bool = True,
    kinds: tuple[str, ...] | None = None,
    default_kind: str | None = None,
) -> None:
    """A dataset is always `--[ROLE-]dataset KIND --[ROLE-]root FOLDER` (and `--[ROLE-]split`
    where it matters): `--dataset cityscapes --root data/cityscapes`, or for training
    `--source-dataset gta5 --source-root ...`."""
    if kinds is None:
        from genadapt.datasets import DATASET_KINDS

        kinds = tuple(sorted(DATASET_KINDS))
    prefix = f"{role}-" if role else ""
    what = f"the {role} dataset" if role else "the dataset"
    parser.add_argument(
        f"--{prefix}dataset",
        choices=kinds,
        required=required and default_kind is None,
        default=default_kind,
        help=f"the layout of {what}",
    )
    parser.add_argument(f"--{prefix}root", type=Path, required=required, help=f"{what}'s folder")


def dataset_argument(args: argparse.Namespace, role: str) -> tuple[str, Path] | None:
    """(KIND, ROOT) of an optional `add_dataset_arguments(role=...)` pair, None when neither
    is given; one without the other is an error."""
    kind = getattr(args, f"{role}_dataset")
    root = getattr(args, f"{role}_root")
    if (kind is None) != (root is None):
        raise GenadaptError(f"give --{role}-dataset and --{role}-root together")
    return None if kind is None else (kind, root)
