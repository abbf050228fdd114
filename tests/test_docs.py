"""The documentation site builds with --strict, loads nothing from elsewhere, and its command
reference covers every console script."""

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "hooks"))

import reference  # noqa: E402 - the MkDocs hook, a file beside the docs rather than a package


def test_the_reference_covers_every_console_script():
    entry_points = importlib.metadata.distribution("genadapt").entry_points
    scripts = {ep.name for ep in entry_points if ep.group == "console_scripts"}
    assert set(reference.COMMANDS) == set(scripts)
    text = reference.command_reference()
    for command in scripts:
        assert f"usage: {command}" in text, command
    assert "### `genadapt-bench int8-accuracy`" in text and "--vgg-layout" in text


def test_the_site_builds_strictly_and_fetches_nothing(tmp_path):
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    loads_remote = re.compile(r"<(script|link|img)[^>]+(src|href)=\"https?://|url\(https?://")
    pages = list(tmp_path.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        html = page.read_text()
        found = [m.group(0) for m in loads_remote.finditer(html)]
        # The only absolute links are plain <a> links (the theme's credit), never a load.
        assert found == [], (page, found[:3])
    assert "usage: genadapt-train" in (tmp_path / "reference" / "index.html").read_text()
