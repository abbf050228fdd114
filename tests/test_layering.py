"""The layering the README states: trainer, export and serve import only the core (genadapt/);
the core imports no stage; benchmarks may use every stage."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = {"trainer": "genadapt.trainer", "export": "genadapt.export", "serve": "genadapt.serve",
          "benchmarks": "genadapt.benchmarks"}  # fmt: skip


def imported_modules(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = {node.module}
            else:
                continue
            found.setdefault(str(path.relative_to(ROOT)), set()).update(names)
    return found


def offences(folder: str, forbidden: list[str]) -> list[str]:
    return sorted(
        f"{path} imports {name}"
        for path, names in imported_modules(ROOT / folder).items()
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


@pytest.mark.parametrize("stage", ["trainer", "export", "serve"])
def test_a_stage_imports_only_the_core(stage):
    others = [module for name, module in STAGES.items() if name != stage]
    assert offences(stage, others) == []


def test_the_core_imports_no_stage():
    assert offences("genadapt", list(STAGES.values())) == []


def test_the_rule_catches_an_upward_import(tmp_path, monkeypatch):
    (tmp_path / "serve").mkdir()
    (tmp_path / "serve" / "bad.py").write_text("from genadapt.trainer.config import TrainConfig\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert offences("serve", ["genadapt.trainer"]) == [
        "serve/bad.py imports genadapt.trainer.config"
    ]


def test_no_function_runs_past_seventy_lines():
    """Long functions were split where it made them read better; this keeps new ones short."""
    import ast

    long = []
    for folder in ("genadapt", *STAGES):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > 70:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert long == []
