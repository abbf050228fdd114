"""The results tables of the README and the docs are the committed result files, rendered by
the current code.

Each results block is

    <!-- results: COMMAND -->
    …the Markdown COMMAND renders…
    <!-- /results -->

where COMMAND is `genadapt-eval table …` on committed eval reports, `summary PATH` for a
committed sweep summary (rendered as the sweep writes it) or `int8-accuracy PATH` for a
committed `genadapt-bench int8-accuracy` report. A block that differs from what its
command renders now fails, and so does an mIoU table outside any block.
"""

import json
import re
import shlex
from pathlib import Path

import pytest

from genadapt.benchmarks.int8_accuracy import int8_accuracy_markdown
from genadapt.commands.eval import get_table_parser, render_table
from genadapt.trainer.sweep import summary_markdown

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- results: (.+?) -->\n(.*?)<!-- /results -->", re.S)


def render(command: str) -> str:
    argv = shlex.split(command)
    if argv[:2] == ["genadapt-eval", "table"]:
        args = get_table_parser().parse_args(argv[2:])
        return render_table([_rooted(s) for s in args.reports], args.subset, args.pair)
    if argv[0] == "summary" and len(argv) == 2:
        return summary_markdown(json.loads((ROOT / argv[1]).read_text()))
    if argv[0] == "int8-accuracy" and len(argv) == 2:
        return int8_accuracy_markdown(json.loads((ROOT / argv[1]).read_text()))
    raise AssertionError(f"unknown results command {command!r}")


def _rooted(spec: str) -> str:
    key, _, path = spec.partition("=")
    return f"{key}={ROOT / path}"


def blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


PAGES = ["README.md", "docs/results.md", "docs/tuning/README.md"]  # the pages that show results
SHOWN = [(page, *block) for page in PAGES for block in blocks((ROOT / page).read_text())]


@pytest.mark.parametrize("page, command, shown", SHOWN, ids=lambda v: str(v)[:50])
def test_a_results_table_is_what_its_files_render(page, command, shown):
    assert shown.strip() == render(command).strip(), f"{page}: {command}"


@pytest.mark.parametrize("page", PAGES)
def test_every_miou_table_is_in_a_results_block(page):
    text = (ROOT / page).read_text()
    outside = BLOCK.sub("", text)
    tables = [line for line in outside.splitlines() if line.startswith("| mIoU")]
    assert tables == [], f"{page}: an mIoU table outside <!-- results: … --> blocks"
    assert blocks(text), f"{page} shows no results block"


def test_a_changed_number_is_caught(tmp_path):
    _, command, shown = SHOWN[0]
    number = re.search(r"\d+\.\d", shown).group(0)
    altered = shown.replace(number, f"{float(number) + 0.1:.1f}", 1)
    assert altered.strip() != render(command).strip()
