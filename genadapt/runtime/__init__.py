"""The runtime: one `Segmenter` interface over PyTorch, ONNX Runtime and TensorRT, loaded by
`load_segmenter(path, RuntimeOptions(...))` through the backend registry."""

from genadapt.runtime.backends import BACKENDS, backend_names
from genadapt.runtime.base import Segmenter
from genadapt.runtime.loader import load_segmenter
from genadapt.runtime.options import RuntimeOptions
from genadapt.runtime.torch_backend import TorchSegmenter

__all__ = [
    "BACKENDS",
    "RuntimeOptions",
    "Segmenter",
    "TorchSegmenter",
    "backend_names",
    "load_segmenter",
]
