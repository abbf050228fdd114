"""What every genadapt command shares: logging set-up and errors as one line, never a traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from genadapt.errors import GenadaptError
from genadapt.provenance import running_command

log = logging.getLogger("genadapt")

# Errors that mean bad input or environment; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (GenadaptError, OSError, ValueError)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def run_cli(prog: str, main: Callable[[], int], argv: list[str] | None = None) -> int:
    """Run `main`, turning a user error into `prog: error: ...` and exit status 2.

    `argv` (default: this process's arguments) is the command that result files record as
    their provenance. Set GENADAPT_DEBUG=1 to see the full traceback instead.
    """
    try:
        with running_command([prog.split()[0], *(sys.argv[1:] if argv is None else argv)]):
            return main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if os.environ.get("GENADAPT_DEBUG"):
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
