"""genadapt-label on a local Ray with two actors: the labels genadapt-predict writes, a manifest
line per image, a corrupt file reported without stopping, and a killed job that resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genadapt.checkpoint import save_checkpoint
from genadapt.commands.label import MANIFEST, SUMMARY, cli, expand_inputs
from genadapt.commands.predict import cli as predict

from helpers import trained_like_checkpoint

pytest.importorskip("ray")


def photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"frame_{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (50, 100, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_checkpoint(trained_like_checkpoint(), tmp_path_factory.mktemp("m") / "model.pt")


def stop_ray() -> None:
    """What a killed driver leaves running of its local Ray."""
    ray = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=60)


def test_two_actors_write_predicts_labels_and_a_manifest(model, tmp_path, capsys):
    files = photos(tmp_path / "in", 7)
    (tmp_path / "in" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    out = tmp_path / "labels"
    status = cli([str(model), str(tmp_path / "in"), "--out", str(out), "--actors", "2",
                  "--batch-size", "3", "--color"])  # fmt: skip
    assert status == 1  # one file failed; the others were labelled
    assert predict([str(model), *map(str, files), "--out", str(tmp_path / "pred")]) == 0
    for f in files:
        ours = np.asarray(Image.open(out / f"{f.stem}_labels.png"))
        np.testing.assert_array_equal(
            ours, np.asarray(Image.open(tmp_path / "pred" / f"{f.stem}_labels.png"))
        )
        assert (out / f"{f.stem}_color.png").is_file() and not (
            out / f"{f.stem}_overlay.jpg"
        ).exists()
    records = {Path(r["input"]).name: r for r in manifest(out)}
    assert len(records) == 8
    assert records["corrupt.jpg"]["status"] == "failed" and records["corrupt.jpg"]["error"]
    ok = records["frame_000.png"]
    assert ok["status"] == "ok" and ok["output"] == "frame_000_labels.png"
    assert len(ok["sha256"]) == len(ok["model_sha256"]) == 64
    summary = json.loads((out / SUMMARY).read_text())
    assert (summary["labelled"], summary["failed"], summary["actors"]) == (7, 1, 2)
    assert "corrupt.jpg" in capsys.readouterr().err


def test_a_killed_job_resumes_without_redoing_what_it_finished(model, tmp_path):
    files = photos(tmp_path / "in", 40, seed=1)
    out = tmp_path / "labels"
    command = [sys.executable, "-m", "genadapt.commands.label", str(model), str(tmp_path / "in"),
               "--out", str(out), "--actors", "2", "--batch-size", "2"]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 120
        while not ((out / MANIFEST).is_file() and len(manifest(out)) >= 4):
            assert job.poll() is None and time.time() < deadline, "no progress to interrupt"
            time.sleep(0.2)
        os.killpg(job.pid, signal.SIGKILL)  # no chance to tidy up
        job.wait(timeout=30)
    finally:
        stop_ray()
    first = manifest(out)
    assert 4 <= len(first) < 40, "the kill came after the job finished"
    finished = {r["input"] for r in first if r["status"] == "ok"}

    assert cli([str(model), str(tmp_path / "in"), "--out", str(out), "--actors", "2"]) == 0
    records = manifest(out)
    labelled = [r["input"] for r in records if r["status"] == "ok"]
    assert sorted(set(labelled)) == sorted(map(str, files))  # everything, once the rerun is done
    assert all(labelled.count(source) == 1 for source in finished)  # nothing finished redone
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["skipped_done"] == len(finished) and summary["labelled"] == 40 - len(finished)


def test_inputs_are_files_folders_globs_and_list_files(tmp_path, monkeypatch):
    files = photos(tmp_path / "a" / "b", 3)
    (tmp_path / "list.txt").write_text(f"{files[0]}\n\n{files[2]}\n")
    monkeypatch.chdir(tmp_path)
    assert [j.source for j in expand_inputs(["@list.txt"])] == [files[0], files[2]]
    assert len(expand_inputs(["a/**/*.png"])) == 3
    assert next(j.stem for j in expand_inputs([str(tmp_path / "a")])) == Path("b/frame_000")
