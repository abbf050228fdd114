"""The README's results tables are the committed result files, rendered by the current code.

Each results block in README.md is

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


README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("command, shown", blocks(README), ids=lambda v: str(v)[:60])
def test_a_readme_results_table_is_what_its_files_render(command, shown):
    assert shown.strip() == render(command).strip()


def test_every_miou_table_of_the_readme_is_in_a_results_block():
    outside = BLOCK.sub("", README)
    tables = [line for line in outside.splitlines() if line.startswith("| mIoU")]
    assert tables == [], "an mIoU table outside <!-- results: … --> blocks"
    assert blocks(README), "the README shows no results block"


def test_a_changed_number_is_caught(tmp_path):
    command, shown = blocks(README)[0]
    number = re.search(r"\d+\.\d", shown).group(0)
    altered = shown.replace(number, f"{float(number) + 0.1:.1f}", 1)
    assert altered.strip() != render(command).strip()
