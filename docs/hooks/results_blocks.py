"""The results tables of the README and the docs, rendered from the committed result files.

A results block in a page is

    <!-- results: COMMAND -->
    …the Markdown COMMAND renders…
    <!-- /results -->

where COMMAND is `genadapt-eval table …` on committed eval reports, `summary PATH` for a
committed sweep summary (rendered as the sweep writes it), `int8-accuracy PATH` for a
committed `genadapt-bench int8-accuracy` report or `table3 PATH` for a committed
`genadapt-bench table3` (or `suite`) report. `python docs/hooks/results_blocks.py` (`make
results-tables`) rewrites every block from its files; tests/test_readme_results.py fails when a
page differs from what its files render.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The pages that show results.
PAGES = ["README.md", "docs/results.md", "docs/tuning/README.md", "docs/performance.md"]
BLOCK = re.compile(r"(<!-- results: (.+?) -->\n)(.*?)(<!-- /results -->)", re.S)


def render(command: str) -> str:
    from genadapt.benchmarks.int8_accuracy import int8_accuracy_markdown
    from genadapt.benchmarks.report import table3_tables
    from genadapt.commands.eval import get_args_parser, render_table
    from genadapt.trainer.sweep import baselines, paired, paired_markdown, summary_markdown

    argv = shlex.split(command)
    if argv[:2] == ["genadapt-eval", "table"]:
        args = get_args_parser().parse_args(argv[1:])
        return render_table([_rooted(s) for s in args.reports], args.subset, args.pair)
    if argv[0] == "summary" and len(argv) == 2:
        return summary_markdown(json.loads((ROOT / argv[1]).read_text()))
    if argv[0] == "paired" and len(argv) == 2:  # a sweep's paired gains and who made them
        summary = json.loads((ROOT / argv[1]).read_text())
        trained = sorted({c for r in summary["runs"].values() for c in r.get("trained_at", [])})
        names = summary["names"]
        against = summary.get("baselines") or baselines(list(names), {})
        columns = list(next(iter(names.values())))
        comparisons = summary.get("paired") or paired(summary["runs"], against, columns)
        lines = paired_markdown(comparisons)[3:]  # the table, without its lead-in
        lines += ["", f"Runs trained at commit(s): {', '.join(trained) or 'not recorded'}."]
        return "\n".join(lines) + "\n"
    if argv[0] == "int8-accuracy" and len(argv) == 2:
        return int8_accuracy_markdown(json.loads((ROOT / argv[1]).read_text()))
    if argv[0] == "table3" and len(argv) == 2:
        return table3_tables(json.loads((ROOT / argv[1]).read_text()))
    raise ValueError(f"unknown results command {command!r}")


def _rooted(spec: str) -> str:
    key, _, path = spec.partition("=")
    return f"{key}={ROOT / path}"


def blocks(text: str) -> list[tuple[str, str]]:
    """(command, what the page shows) for every results block of a page."""
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(text)]


def refreshed(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render(m.group(2)).strip() + "\n" + m.group(4), text)


def main() -> int:
    for page in PAGES:
        path = ROOT / page
        text = path.read_text()
        new = refreshed(text)
        if new != text:
            path.write_text(new)
            print(f"updated {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
