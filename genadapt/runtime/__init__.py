"""The runtime: one `Segmenter` interface over PyTorch, ONNX Runtime and TensorRT."""

from genadapt.runtime.base import Segmenter
from genadapt.runtime.loader import BACKENDS, load_segmenter
from genadapt.runtime.torch_backend import TorchSegmenter

__all__ = ["BACKENDS", "Segmenter", "TorchSegmenter", "load_segmenter"]
