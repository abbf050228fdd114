"""A non-editable install ships exactly the packages pyproject lists: none may be forgotten."""

import zipfile
from pathlib import Path

import pytest

from helpers import build_wheel

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = {name: Path(path) for name, path in config["package-dir"].items()}
    found = set()
    for name, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *relative)))
    assert found == listed


def test_a_wheel_builds_from_exactly_what_the_dockerfile_copies(tmp_path):
    """The image once failed to build: pyproject mapped a folder the Dockerfile never copied."""
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package in config["packages"]:
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    assert "genadapt/serve/static/index.html" in names
