"""A pickle that runs code when unpickled, handed to every command that reads a model or a
run: each refuses it in one line, and the code never runs."""

from __future__ import annotations

import pickle
import time

import pytest
import torch

from genadapt.checkpoint import FORMAT


class Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').touch()",))


@pytest.fixture
def evil(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": FORMAT, "version": 1, "x": Evil()}, "evil.pt")
    with open("evil_plain.pt", "wb") as f:
        pickle.dump({"format": FORMAT, "version": 1, "x": Evil()}, f)
    yield tmp_path
    assert not (tmp_path / "PWNED").exists(), "the pickle's code ran"


@pytest.mark.parametrize("name", ["evil.pt", "evil_plain.pt"])
def test_every_command_refuses_a_malicious_pickle(evil, name, capsys):
    from genadapt.benchmarks.cli import cli as bench
    from genadapt.commands.eval import cli as evaluate
    from genadapt.commands.predict import cli as predict
    from genadapt.export.cli import cli as export

    (evil / "img.png").write_bytes(b"not read: the model fails first")
    statuses = {
        "predict": predict([name, "img.png", "--out", "out"]),
        "eval": evaluate([name, "--dataset", "cityscapes", "--root", ".", "--out", "e"]),
        "export": export([name, "--out", "x"]),
        "bench pipeline": bench(["pipeline", "--model", name, "--quick", "--out", "b"]),
    }
    assert statuses == dict.fromkeys(statuses, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # Each refused the model file itself, not something else first.
    assert err.count(f"cannot read {name}: it holds Python objects") == 4, err


def test_the_service_refuses_a_malicious_pickle(evil):
    from fastapi.testclient import TestClient

    from genadapt.serve.app import create_app
    from genadapt.serve.settings import ServeSettings

    with TestClient(create_app(ServeSettings(model=str(evil / "evil.pt")))) as client:
        for _ in range(200):
            body = client.get("/readyz").json()
            if body["error"]["code"] != "loading":
                break
            time.sleep(0.05)
        assert body["error"]["code"] == "model_failed"
        assert "it holds Python objects" in body["error"]["message"]
