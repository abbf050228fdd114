import pickle

import pytest
import torch

from genadapt.checkpoint import (
    FORMAT,
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from genadapt.labels import CITYSCAPES19, SYNTHIA16
from genadapt.model import build_model

from helpers import TINY, TINY_INPUT, make_checkpoint


def test_round_trip_restores_everything(tmp_path):
    original = make_checkpoint(winning_class=4, seed=3)
    original.train_config = {"lr": 1e-5, "variant": "full", "crop": [640, 320]}
    path = save_checkpoint(original, tmp_path / "sub" / "ckpt.pt")
    loaded = load_checkpoint(path)
    assert loaded.model_config == TINY
    assert loaded.spec.label_space == CITYSCAPES19
    assert loaded.spec.input_size == TINY_INPUT
    assert loaded.step == 7 and loaded.metrics == {"miou": 0.5}
    assert loaded.train_config == original.train_config
    assert loaded.spec.normalization == original.spec.normalization
    x = torch.randn(1, 3, TINY_INPUT[1], TINY_INPUT[0])
    torch.testing.assert_close(loaded.build_model()(x), original.build_model()(x))
    assert not list(tmp_path.glob("sub/.*.tmp")), "temporary file left behind"


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "random.pt").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "random.pt")
    torch.save(build_model(TINY).state_dict(), tmp_path / "bare_state_dict.pt")
    with pytest.raises(CheckpointError, match="not a genadapt checkpoint"):
        load_checkpoint(tmp_path / "bare_state_dict.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_truncated_checkpoint(tmp_path):
    path = save_checkpoint(make_checkpoint(), tmp_path / "ckpt.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_the_spec_comes_back_whole(tmp_path):
    original = make_checkpoint()
    original.spec = original.spec.replace(upsample="nearest", output_scale=3, precision="fp16")
    loaded = load_checkpoint(save_checkpoint(original, tmp_path / "ckpt.pt"))
    assert loaded.spec == original.spec  # version 1 lost all three


def test_a_version_1_checkpoint_still_loads_as_it_always_ran(tmp_path):
    current = make_checkpoint(winning_class=4)
    payload = current.to_payload()
    spec = payload.pop("spec")
    payload["version"] = 1
    for key in ("label_space", "input_size", "normalization"):
        payload[key] = spec[key]
    torch.save(payload, tmp_path / "v1.pt")
    loaded = load_checkpoint(tmp_path / "v1.pt")
    assert loaded.spec == current.spec
    assert (loaded.spec.upsample, loaded.spec.output_scale, loaded.spec.precision) == (
        "bilinear", 2, "fp32")  # fmt: skip
    x = torch.randn(1, 3, TINY_INPUT[1], TINY_INPUT[0])
    torch.testing.assert_close(loaded.build_model()(x), current.build_model()(x))


def test_other_version_is_refused(tmp_path):
    payload = make_checkpoint().to_payload()
    payload["version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")


class _Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').touch()",))


def test_loading_never_executes_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("evil.pt", "wb") as f:
        pickle.dump({"format": FORMAT, "version": 1, "x": _Evil()}, f)
    torch.save({"format": FORMAT, "version": 1, "x": _Evil()}, "evil_zip.pt")
    for name in ("evil.pt", "evil_zip.pt"):
        with pytest.raises(CheckpointError):
            load_checkpoint(name)
    assert not (tmp_path / "PWNED").exists()


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = save_checkpoint(make_checkpoint(seed=1), tmp_path / "ckpt.pt")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(make_checkpoint(seed=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_mismatched_label_space_and_weights(tmp_path):
    model = build_model(TINY)
    with pytest.raises(CheckpointError, match="16 classes"):
        Checkpoint.from_model(model, SYNTHIA16, TINY_INPUT)
    payload = make_checkpoint().to_payload()
    payload["model"]["width"] = 0.125  # the stored weights are for width 0.0625
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "mismatch.pt").build_model()
