"""MkDocs hook: the command reference is generated from the commands' own argparse parsers
at every build, so that it cannot drift from the code (docs/reference.md holds the marker)."""

from __future__ import annotations

import argparse
import importlib
import os

MARKER = "<!-- generated: command reference -->"
# console script → (module, parser factory); subcommands come from the parser itself.
COMMANDS: dict[str, list[tuple[str, str, str]]] = {
    "genadapt-data": [("", "genadapt.commands.data", "get_args_parser")],
    "genadapt-train": [("", "genadapt.trainer.cli", "get_args_parser")],
    "genadapt-sweep": [("", "genadapt.trainer.sweep", "get_args_parser")],
    "genadapt-eval": [("", "genadapt.commands.eval", "get_args_parser")],
    "genadapt-export": [("", "genadapt.export.cli", "get_args_parser")],
    "genadapt-predict": [("", "genadapt.commands.predict", "get_args_parser")],
    "genadapt-label": [("", "genadapt.commands.label", "get_args_parser")],
    "genadapt-serve": [("", "genadapt.serve.cli", "get_args_parser")],
    "genadapt-client": [("", "genadapt.serve.client", "get_args_parser")],
    "genadapt-bench": [("", "genadapt.benchmarks.cli", "get_args_parser")],
    "genadapt-triton": [("", "genadapt.export.triton", "get_args_parser")],
}


def command_reference() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: one width for every build
    parts = []
    for command, parsers in COMMANDS.items():
        parts.append(f"## `{command}`\n")
        for sub, module, factory in parsers:
            parser = getattr(importlib.import_module(module), factory)()
            for name, each in [(sub, parser), *_subcommands(parser)]:
                title = f"{command} {name}".strip()
                if each is not parser or sub:
                    parts.append(f"### `{title}`\n")
                parts.append(f"```text\n{each.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    return [
        (name, sub)
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    ]


def on_page_markdown(markdown: str, page, config, files) -> str:
    return markdown.replace(MARKER, command_reference()) if MARKER in markdown else markdown
