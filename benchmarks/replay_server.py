"""A genadapt-serve whose network is a replay: the service's own ceiling, on any machine.

`genadapt-bench service` starts this instead of genadapt-serve. Everything is the service's
(HTTP, limits, decode, the batching worker, encode); only the network's work is replaced by
handing back one fixed, realistic label map (a built-in scene's ground truth), so that what is
measured is what the service costs around the network. Never a backend of the product.

    python -m genadapt.benchmarks.replay_server --port 8000 [--network 1024x512]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from genadapt.benchmarks.common import parse_size
from genadapt.imaging import nearest_labels
from genadapt.labels import CITYSCAPES19
from genadapt.runtime.base import Segmenter
from genadapt.scenes.generate import SceneSpec, make_scene
from genadapt.spec import ModelSpec


class ReplaySegmenter(Segmenter):
    """Answers every batch with the same label map, at once."""

    backend = "replay (no network)"
    sha256 = "replay"

    def __init__(self, network: tuple[int, int]) -> None:
        super().__init__(ModelSpec(CITYSCAPES19, network))
        _, labels = make_scene(SceneSpec("target", "val", 0, self.spec.output_size, seed=5))
        self.labels = labels.astype(np.uint8)

    def run(self, batch: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
        one = nearest_labels(self.labels[None], output_size)
        return np.repeat(one, len(batch), axis=0)


def main(argv: list[str] | None = None) -> int:
    from genadapt.cli import setup_logging
    from genadapt.serve.app import create_app
    from genadapt.serve.cli import run_server
    from genadapt.serve.settings import ServeSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--network", default="1024x512", help="WxH the replayed network runs at")
    parser.add_argument("--max-batch", type=int, default=4)
    args = parser.parse_args(argv)
    setup_logging(False)
    network = parse_size(args.network)
    settings = ServeSettings(model="replay", port=args.port, max_batch=args.max_batch)
    run_server(create_app(settings, load=lambda: ReplaySegmenter(network)), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
