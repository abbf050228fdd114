"""Every result file says which code, machine and command made it."""

import json
import subprocess

import pytest

from genadapt import provenance as prov
from genadapt.evaluate import write_report


@pytest.fixture
def fresh(monkeypatch):
    """code_version() reads git once per process: start each test without that cache."""
    prov.code_version.cache_clear()
    yield monkeypatch
    prov.code_version.cache_clear()


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_the_commit_and_a_dirty_tree_are_recorded(tmp_path, fresh):
    git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "add", "code.py")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    fresh.setattr(prov, "CHECKOUT", tmp_path)
    record = prov.provenance(["genadapt-eval", "model.pt", "--name", "a b"])
    assert record["commit"] == head and record["dirty"] is False
    assert record["command"] == "genadapt-eval model.pt --name 'a b'"
    assert record["machine"]["cores"] >= 1 and record["machine"]["cpu"]
    assert record["date"].endswith("+00:00")
    (tmp_path / "code.py").write_text("x = 2\n")  # an uncommitted change
    prov.code_version.cache_clear()
    assert prov.code_version()["dirty"] is True
    (tmp_path / "untracked.txt").write_text("")  # untracked files do not change the code
    git(tmp_path, "checkout", "-q", "code.py")
    prov.code_version.cache_clear()
    assert prov.code_version()["dirty"] is False


def test_outside_a_checkout_the_commit_comes_from_the_environment(tmp_path, fresh):
    fresh.setattr(prov, "CHECKOUT", tmp_path)  # no .git: never an enclosing repository's
    fresh.delenv("GENADAPT_COMMIT", raising=False)
    assert prov.code_version()["commit"] == "unknown"
    prov.code_version.cache_clear()
    fresh.setenv("GENADAPT_COMMIT", "abc123")
    assert prov.code_version() == {"commit": "abc123", "dirty": None,
                                   "version": prov.code_version()["version"]}  # fmt: skip


def test_an_evaluation_report_carries_its_provenance(tmp_path, fresh):
    fresh.setattr(prov, "CHECKOUT", tmp_path)
    fresh.setenv("GENADAPT_COMMIT", "feedface")
    result = {"per_class_iou": {"road": 50.0}, "miou": {"cityscapes19": 50.0},
              "convention": "one matrix"}  # fmt: skip
    json_path, md_path = write_report(tmp_path, "target", result)
    record = json.loads(json_path.read_text())["provenance"]
    assert record["commit"] == "feedface" and record["command"]
    assert "Made by commit feedface" in md_path.read_text()
