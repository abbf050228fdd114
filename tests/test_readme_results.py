"""The results tables of the README and the docs are the committed result files, rendered by
the current code (docs/hooks/results_blocks.py says how a page marks them)."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "hooks"))

from results_blocks import BLOCK, PAGES, blocks, render  # noqa: E402 - a docs tool, not a package

SHOWN = [(page, *block) for page in PAGES for block in blocks((ROOT / page).read_text())]


@pytest.mark.parametrize("page, command, shown", SHOWN, ids=lambda v: str(v)[:50])
def test_a_results_table_is_what_its_files_render(page, command, shown):
    assert shown.strip() == render(command).strip(), f"{page}: {command} (make results-tables)"


@pytest.mark.parametrize("page", PAGES)
def test_every_miou_table_is_in_a_results_block(page):
    text = (ROOT / page).read_text()
    outside = BLOCK.sub("", text)
    tables = [line for line in outside.splitlines() if line.startswith("| mIoU")]
    assert tables == [], f"{page}: an mIoU table outside <!-- results: … --> blocks"
    assert blocks(text), f"{page} shows no results block"


def test_a_changed_number_is_caught():
    _, command, shown = SHOWN[0]
    number = re.search(r"\d+\.\d", shown).group(0)
    altered = shown.replace(number, f"{float(number) + 0.1:.1f}", 1)
    assert altered.strip() != render(command).strip()


def test_a_table3_block_keeps_the_pages_outline_and_names_its_commit():
    (command,) = [c for page, c, _ in SHOWN if c.startswith("table3 ")]
    shown = render(command)
    assert not [line for line in shown.splitlines() if line.startswith("#")]
    assert "**Evaluation: the network F+C per image**" in shown
    assert "| 1024×512 | 443 | onnxruntime labels | int8 |" in shown
    assert "Made by commit " in shown and "CPU goal" in shown
