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


def _gpu_requirements() -> tuple[dict[str, str], set[str]]:
    """benchmarks/gpu-requirements.txt: the pinned packages, and what the GPU image has."""
    pinned, image_has = {}, set()
    text = (ROOT / "benchmarks/gpu-requirements.txt").read_text()
    for line in text.splitlines():
        if line.startswith("# image-has:"):
            image_has |= {_canonical(n) for n in line.split(":", 1)[1].split()}
        elif line.strip() and not line.startswith("#"):
            name, _, version = line.split("#")[0].strip().partition("==")
            pinned[_canonical(name)] = version
    return pinned, image_has


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def test_the_gpu_wheels_cover_every_runtime_dependency_the_image_lacks():
    """The first GPU run lost its service check twice to a module the wheels left out (a new
    fastapi's opentelemetry-api, then fastapi-offline): every runtime dependency of genadapt,
    and every dependency of a package pinned for the GPU, is pinned or in the image."""
    from importlib import metadata

    import tomllib
    from packaging.requirements import Requirement

    pinned, image_has = _gpu_requirements()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = {_canonical(Requirement(r).name) for r in project["dependencies"]}
    for name in pinned:
        installed = "onnxruntime" if name == "onnxruntime-gpu" else name  # same metadata
        environment = {"extra": "", "python_version": "3.12", "sys_platform": "linux"}
        for text in metadata.requires(installed) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                needed.add(_canonical(requirement.name))
    missing = sorted(needed - set(pinned) - image_has)
    assert not missing, f"add to benchmarks/gpu-requirements.txt (or image-has): {missing}"
