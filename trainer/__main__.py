import sys

from genadapt.trainer.cli import cli

sys.exit(cli())
