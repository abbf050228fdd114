"""The errors genadapt raises for bad input; CLIs print them as one line and exit non-zero."""


class GenadaptError(Exception):
    """Base class: a problem with the user's input, files or environment, not a bug."""
