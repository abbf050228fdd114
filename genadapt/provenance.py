"""Where a result came from: the code (git commit, and whether the tree had uncommitted
changes), the machine, the command and the date. Every result file genadapt writes carries this
record, so that a figure in a report can be traced to the commit and machine that made it.

Outside a git checkout (an installed wheel, the container image) the commit comes from the
GENADAPT_COMMIT environment variable, or is "unknown".
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import torch

import genadapt

CHECKOUT = Path(__file__).resolve().parents[1]  # the repository root of a source install
CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")


_command: list[str] | None = None  # the genadapt command running in this process, if any


@contextmanager
def running_command(argv: list[str]) -> Iterator[None]:
    """While a command runs (`cli.run_cli`), results record `argv` as what made them."""
    global _command
    previous, _command = _command, list(argv)
    try:
        yield
    finally:
        _command = previous


def provenance(argv: list[str] | None = None) -> dict:
    """The record for a result made now, by `argv` (default: the running genadapt command,
    else this process's command line)."""
    argv = argv or _command or [Path(sys.argv[0]).name, *sys.argv[1:]]
    return {
        **code_version(),
        "command": shlex.join(argv),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }


@functools.cache
def code_version() -> dict:
    """{"commit", "dirty", "version"}: dirty is None where it cannot be told (no checkout)."""
    commit, dirty = _git("rev-parse", "HEAD"), None
    if commit is not None:
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status)
    else:
        commit = os.environ.get("GENADAPT_COMMIT", "unknown")
    return {"commit": commit, "dirty": dirty, "version": genadapt.__version__}


def _git(*args: str) -> str | None:
    if not (CHECKOUT / ".git").exists():  # not a checkout: never report an enclosing repo's
        return None
    try:
        result = subprocess.run(
            ["git", "-C", str(CHECKOUT), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


@functools.cache
def machine() -> dict:
    """The CPU (model, cores, the vector extensions that decide its speed), the GPU if any,
    and the versions that change numbers."""
    info: dict = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_features": cpu_features(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": platform.platform(),
    }
    return info


def cpu_model() -> str:
    # No /proc (not Linux): the platform's own word.
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_features() -> list[str]:
    """The vector extensions of this CPU that decide its speed (from /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(
                (line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []
            )
    except OSError:
        return []
    return [flag for flag in CPU_FEATURES if flag in flags]


def footnote(record: dict) -> str:
    """One Markdown line naming the record, for the foot of a report."""
    dirty = " (uncommitted changes)" if record.get("dirty") else ""
    gpu = record["machine"].get("gpu")
    where = gpu or f"{record['machine']['cpu']} ({record['machine']['cores']} cores)"
    return (
        f"Made by commit {record['commit'][:12]}{dirty} on {where}, {record['date']}: "
        f"`{record['command']}`"
    )
