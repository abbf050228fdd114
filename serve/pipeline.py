"""`SegmentPipeline`: what the service does to one upload, as functions: decode it the way
genadapt-predict does, run the network, encode the answer.

The route runs the stages one by one on its thread pool and batching worker, with the memory
budget held around each (`serve.routes`); `segment_bytes` runs them in sequence in the calling
thread, which is how the benchmarks time exactly what the service does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from genadapt.imaging import DEFAULT_MAX_PIXELS, decode_cost
from genadapt.runtime.base import Segmenter
from genadapt.serve.outputs import (
    OUTPUT_BYTES_PER_PIXEL,
    Decoded,
    EncodeRequest,
    decode_upload,
    draft_sizes,
    encode,
)
from genadapt.spec import ModelSpec

MAX_OUTPUT_PIXELS = 16_777_216  # a size=input answer is scaled down to fit this


@dataclass(frozen=True)
class SegmentPipeline:
    """One request's answer: its format and size, and the service's limits on both."""

    spec: ModelSpec
    format: str = "png"  # one of serve.outputs.FORMATS
    size: str = "native"  # native (the spec's output size) or input (the upload's)
    overlay: bool = False  # json only: add the overlay
    photo: bool = False  # json only: add the decoded photo
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_output_pixels: int = MAX_OUTPUT_PIXELS
    png_level: int = 1

    @property
    def photo_needed(self) -> bool:
        return self.format == "overlay" or (self.format == "json" and (self.overlay or self.photo))

    def decode_cost(self, data: bytes) -> int:
        """Bytes the decode may hold at its peak, from the header alone (the memory budget)."""
        return decode_cost(data, draft_sizes(self.spec, self.photo_needed))

    def decode(self, data: bytes) -> Decoded:
        return decode_upload(data, self.spec, self.max_pixels, self.photo_needed)

    def output_size(self, decoded: Decoded) -> tuple[int, int]:
        return decoded.output_size(self.spec, self.size, self.max_output_pixels)

    def encode_cost(self, decoded: Decoded) -> int:
        """Bytes the encode may hold at its peak (the memory budget)."""
        width, height = self.output_size(decoded)
        return width * height * OUTPUT_BYTES_PER_PIXEL

    def encode(self, decoded: Decoded, labels: np.ndarray) -> bytes | dict:
        return encode(
            EncodeRequest(
                format=self.format,
                labels=labels,
                photo=decoded.photo,
                size=self.output_size(decoded),
                label_space=self.spec.label_space,
                png_level=self.png_level,
                with_overlay=self.overlay,
                with_photo=self.photo,
            )
        )


def segment_bytes(
    data: bytes,
    segmenter: Segmenter,
    pipeline: SegmentPipeline | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[bytes | dict, dict[str, float]]:
    """An upload → the service's answer body, with the seconds of each stage (decode, network,
    encode, total), in this thread: the service's work without its queue and its HTTP."""
    pipeline = pipeline or SegmentPipeline(segmenter.spec)
    started = clock()
    decoded = pipeline.decode(data)
    decoded_at = clock()
    labels = segmenter.run(decoded.network_input[None], segmenter.spec.output_size)[0]
    ran_at = clock()
    body = pipeline.encode(decoded, labels)
    done = clock()
    timings = {
        "decode": decoded_at - started,
        "network": ran_at - decoded_at,
        "encode": done - ran_at,
        "total": done - started,
    }
    return body, timings
