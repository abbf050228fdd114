"""Atomic file writes: a reader (or a resumed run) never sees a half-written file."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from genadapt.errors import GenadaptError

log = logging.getLogger(__name__)
# Below this much free space a failed write is taken for a full disk, whatever the library
# said (torch.save reports ENOSPC as a RuntimeError "file write failed").
LOW_SPACE_BYTES = 64 << 20


class DiskFullError(GenadaptError):
    """A write failed for want of space; the file it was replacing is intact."""


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(f)` on a temporary file beside `path`, fsync it, then rename it over `path`.

    A process killed at any moment leaves either the old file or the new one, never a torn one;
    the temporary file is removed if `write` raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp_name, path)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(exc, Exception):
            raise_if_disk_full(
                exc,
                path.parent,
                f"cannot write {path}",
                f"the previous {path.name}, if any, is intact",
            )
        raise
    _fsync_dir(path.parent)
    return path


def raise_if_disk_full(exc: Exception, directory: Path, doing: str, outcome: str) -> None:
    """Raise a DiskFullError saying `doing`, the free space in `directory` and `outcome` when
    `exc` was a full disk (ENOSPC or quota, or any failure with almost no space left)."""
    if _disk_full(exc, directory):
        free = shutil.disk_usage(directory).free
        raise DiskFullError(
            f"{doing}: the disk is full ({free / 2**20:.0f} MB free in {directory}); {outcome}"
        ) from None


def _disk_full(exc: Exception, directory: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(directory).free < LOW_SPACE_BYTES
    except OSError:
        return False


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete what an atomic write killed mid-way left behind (`.NAME.*.tmp`): nothing else
    writes such names, and a run folder has one writer, so none of them is still in use."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
            log.info("removed %s, left by a write that was killed", tmp)
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform allows opening a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_weights_only(path: str | Path, error: type[Exception]) -> Any:
    """`torch.load` that never executes code from the file; any failure becomes `error`.

    torch raises many types for a foreign or corrupt file (UnpicklingError, RuntimeError,
    EOFError, …); callers get one, with the first line of torch's message.
    """
    import torch  # imported here so that the atomic writers stay usable without torch

    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc).strip()
        if "Weights only load failed" in text:
            # torch goes on to explain how to load it unsafely: not advice to pass on.
            reason = "it holds Python objects, not only tensors and plain values, and is refused"
        else:
            reason = re.sub(r"\x1b\[[0-9;]*m", "", text.splitlines()[0]) if text else ""
        raise error(f"cannot read {path}: {reason or type(exc).__name__}") from None
