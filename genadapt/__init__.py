"""genadapt: GAN-based domain adaptation for semantic segmentation (Sankaranarayanan et al.,
CVPR 2018), with the test-time network F+C exported, served and benchmarked."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genadapt")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
