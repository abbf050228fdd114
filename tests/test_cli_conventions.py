"""One spelling across the commands: --backend/--device/--upsample come from the runtime's own
registry and options, a dataset is always --[ROLE-]dataset KIND --[ROLE-]root FOLDER, and the
run-time choices are one typed object."""

from __future__ import annotations

import argparse

import pytest

from genadapt.cli import dataset_argument, device_type, runtime_options
from genadapt.commands.eval import add_retrieval_arguments, add_score_arguments
from genadapt.commands.predict import get_args_parser as predict_parser
from genadapt.errors import GenadaptError
from genadapt.export.cli import get_args_parser as export_parser
from genadapt.runtime import BACKENDS, RuntimeOptions, backend_names
from genadapt.runtime.backends import backend_for
from genadapt.serve.cli import get_args_parser as serve_parser
from genadapt.trainer.cli import get_args_parser as train_parser


def eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_score_arguments(parser)
    return parser


def get_retrieval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_retrieval_arguments(parser)
    return parser


def choices(parser: argparse.ArgumentParser, flag: str):
    action = next(a for a in parser._actions if flag in a.option_strings)
    return tuple(action.choices) if action.choices is not None else None


@pytest.mark.parametrize("parser", [eval_parser, predict_parser, serve_parser])
def test_every_command_that_runs_a_model_offers_the_registrys_backends(parser):
    assert choices(parser(), "--backend") == backend_names() == ("auto", *BACKENDS)


def test_a_device_is_checked_the_same_way_everywhere(capsys):
    for parser in (eval_parser(), predict_parser(), serve_parser()):
        with pytest.raises(SystemExit):
            parser.parse_args(["m.pt", "--device", "gpu", "--out", "o", "x.jpg"])
        assert "'gpu' is not a device: use auto, cpu or cuda" in capsys.readouterr().err
    assert train_parser().parse_args(["--device", "cuda:1"]).device == "cuda:1"
    with pytest.raises(argparse.ArgumentTypeError):
        device_type(indexed=False)("cuda:1")


def test_datasets_are_spelt_dataset_and_root_in_every_role():
    flags = {
        "eval": eval_parser()._option_string_actions,
        "retrieval": get_retrieval_parser()._option_string_actions,
        "export": export_parser()._option_string_actions,
        "train": train_parser()._option_string_actions,
    }
    assert {"--dataset", "--root"} <= set(flags["eval"])
    assert {"--source-dataset", "--source-root", "--target-dataset", "--target-root"} <= set(
        flags["retrieval"]
    ) & set(flags["train"])
    assert {"--eval-dataset", "--eval-root", "--calibration-dataset", "--calibration-root"} <= set(
        flags["export"]
    )
    old_flags = {"--source", "--target", "--eval", "--calibration"}
    assert not old_flags & (set(flags["retrieval"]) | set(flags["export"]))
    # The trainer's older spelling still parses, to the same setting, and is not shown.
    old = train_parser().parse_args(["--source-kind", "synthia"])
    assert old.source_kind == "synthia" and "--source-kind" not in train_parser().format_help()


def test_an_optional_dataset_needs_both_halves():
    args = export_parser().parse_args(["c.pt", "--out", "o", "--eval-dataset", "cityscapes"])
    with pytest.raises(GenadaptError, match="--eval-dataset and --eval-root together"):
        dataset_argument(args, "eval")
    assert dataset_argument(export_parser().parse_args(["c.pt", "--out", "o"]), "eval") is None


def test_flags_become_one_typed_options_object():
    args = predict_parser().parse_args(["m.pt", "x.jpg", "--out", "o", "--backend", "torch"])
    assert runtime_options(args) == RuntimeOptions(backend="torch")
    unset = serve_parser().parse_args(["m.pt"])  # serve leaves them to its layered settings
    assert unset.backend is None and unset.precision is None
    assert runtime_options(unset, max_batch=2) == RuntimeOptions(max_batch=2)
    for bad in ({"backend": "tvm"}, {"device": "gpu"}, {"precision": "int8"}, {"max_batch": 0}):
        with pytest.raises(GenadaptError):
            RuntimeOptions(**bad)


def test_the_registry_says_which_backend_runs_which_file(tmp_path):
    from pathlib import Path

    assert backend_for(Path("m.onnx"), "auto", cuda=False).name == "onnxruntime"
    assert backend_for(Path("m.engine"), "auto", cuda=False).name == "tensorrt"
    assert backend_for(Path("m.pt"), "auto", cuda=True).name == "torch"
    with pytest.raises(GenadaptError, match="an ONNX file, which torch does not run"):
        backend_for(Path("m.onnx"), "torch", cuda=False)
    with pytest.raises(GenadaptError, match="export the checkpoint first"):
        backend_for(Path("m.pt"), "tensorrt", cuda=False)


def test_every_runnable_module_is_a_console_script():
    import re
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    targets = {target.split(":")[0] for target in scripts.values()}
    folders = {"genadapt": "genadapt", "trainer": "genadapt.trainer", "export": "genadapt.export",
               "serve": "genadapt.serve", "benchmarks": "genadapt.benchmarks"}  # fmt: skip
    runnable = set()
    for folder, package in folders.items():
        for path in (root / folder).rglob("*.py"):
            if re.search(r'^if __name__ == "__main__":', path.read_text(), re.M):
                module = ".".join([package, *path.relative_to(root / folder).with_suffix("").parts])
                runnable.add(module)
    runnable.discard("genadapt.trainer.__main__")  # `torchrun -m genadapt.trainer` for DDP
    runnable.discard("genadapt.benchmarks.replay_server")  # genadapt-bench service starts it
    assert runnable <= targets, sorted(runnable - targets)
