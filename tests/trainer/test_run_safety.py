"""A run folder under stress: a full disk (one line naming the path and the free space, exit
status 2, the last good checkpoint intact), a temporary left by a killed save (cleaned up on
resume), and a malicious resume file (refused; its code never runs)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from genadapt import fileio
from genadapt.checkpoint import load_checkpoint
from genadapt.fileio import DiskFullError, atomic_write, atomic_write_bytes
from genadapt.trainer.cli import cli

from train_helpers import args_for


def test_a_failed_write_on_a_full_disk_names_the_path_and_keeps_the_old_file(tmp_path):
    target = atomic_write_bytes(tmp_path / "checkpoint.pt", b"the good one")

    def no_space(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=r"cannot write .*checkpoint.pt: the disk is full"):
        atomic_write(target, no_space)
    assert target.read_bytes() == b"the good one"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_torch_saying_write_failed_on_a_nearly_full_disk_is_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda path: type("U", (), {"free": 1 << 20}))

    def torch_save_failing(f):
        raise RuntimeError(
            "[enforce fail at inline_container.cc] PytorchStreamWriter failed "
            "writing file data/0: file write failed"
        )

    with pytest.raises(DiskFullError, match="1 MB free"):
        atomic_write(tmp_path / "resume.pt", torch_save_failing)
    with pytest.raises(ValueError, match="a bug"):  # other failures are not disguised
        monkeypatch.setattr(
            fileio.shutil, "disk_usage", lambda path: type("U", (), {"free": 1 << 40})
        )
        atomic_write(tmp_path / "x", lambda f: (_ for _ in ()).throw(ValueError("a bug")))


def test_training_on_a_full_disk_exits_2_in_one_line(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    common = ["--iterations", "4", "--set", "checkpoint_every=2", "--set", "val_every=0"]
    real_save = torch.save
    saves = []

    def save_then_fill_the_disk(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) > 2:  # the first checkpoint (checkpoint.pt and resume.pt) goes through
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_fill_the_disk)
    assert cli(args_for(data, run, *common)) == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.split("\n") if "genadapt-train:" in x]
    # The progress bar was closed first: the error starts its own line, not the bar's.
    assert line.startswith("genadapt-train: error: cannot write")
    assert "the disk is full" in line and str(run) in line
    assert "Traceback" not in err
    assert load_checkpoint(run / "checkpoint.pt").step == 2  # the last good one
    assert not list(Path(run).glob(".*.tmp"))


def test_a_temporary_left_by_a_killed_save_is_removed_on_resume(data, tmp_path):
    run = tmp_path / "run"
    common = ["--iterations", "2", "--set", "checkpoint_every=2", "--set", "val_every=0"]
    assert cli(args_for(data, run, *common)) == 0
    stale = run / ".resume.pt.abc123.tmp"
    stale.write_bytes(b"x" * 1000)  # what kill -9 during a save leaves
    assert cli(["--resume", str(run), "--iterations", "4"]) == 0
    assert not stale.exists()


def test_a_malicious_resume_file_is_refused(data, tmp_path, monkeypatch, capsys):
    class Evil:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path('PWNED').touch()",))

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    common = ["--iterations", "2", "--set", "checkpoint_every=2", "--set", "val_every=0"]
    assert cli(args_for(data, run, *common)) == 0
    torch.save({"version": 1, "x": Evil()}, run / "resume.pt")
    assert cli(["--resume", str(run), "--iterations", "4"]) == 2
    assert "resume.pt: it holds Python objects" in capsys.readouterr().err
    assert not (tmp_path / "PWNED").exists()
