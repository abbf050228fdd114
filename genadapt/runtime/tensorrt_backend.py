"""TensorRT backend: a serialized engine of the `labels` flavour, refused unless the sidecar says
it was built by this TensorRT version for this GPU. uint8 in, uint8 out, device buffers from
PyTorch's CUDA allocator, enqueued on a stream of its own (TensorRT warns against the legacy
default stream, which synchronizes with every other stream in the process).

Not run on real hardware here: TensorRT cannot be installed on the machines this project is
developed on. It follows the TensorRT 10 Python API (set_tensor_address + execute_async_v3).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from genadapt.errors import GenadaptError
from genadapt.imaging import nearest_labels
from genadapt.runtime.base import Segmenter
from genadapt.sidecar import Artifact, check_engine_compatible, load_sidecar, verify_artifact
from genadapt.spec import ModelSpec

log = logging.getLogger(__name__)


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise GenadaptError(
            "the tensorrt backend needs NVIDIA TensorRT for Python (pip install tensorrt on a "
            "CUDA machine); run the ONNX file with --backend onnxruntime instead"
        ) from None
    return tensorrt


class TensorRTSegmenter(Segmenter):
    backend = "tensorrt"

    def __init__(self, path: Path, artifact: Artifact, spec: ModelSpec) -> None:
        """The engine at `path`, described by `artifact`; refused unless this machine's TensorRT
        version and GPU are the ones it was built with, and its bytes are the described ones."""
        if artifact.flavour != "labels":
            raise GenadaptError(f"{path.name}: engines are built from the labels flavour")
        super().__init__(spec.replace(precision=artifact.precision))
        trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise GenadaptError("the tensorrt backend needs a CUDA GPU")
        check_engine_compatible(artifact, trt.__version__, torch.cuda.get_device_name())
        verify_artifact(path, artifact)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise GenadaptError(f"TensorRT could not deserialize {path}")
        self.context = self.engine.create_execution_context()
        self.in_name, self.out_name = artifact.input_name, artifact.output_name
        self.max_batch = artifact.max_batch or 1
        self.device, self.file, self.sha256 = "cuda", path.name, artifact.sha256
        self.stream = torch.cuda.Stream()

    @classmethod
    def from_file(cls, path: str | Path) -> TensorRTSegmenter:
        """An exported engine, described by the model.json beside it."""
        path = Path(path)
        sidecar = load_sidecar(path)
        return cls(path, sidecar.artifact(path.name), sidecar.spec)

    @torch.inference_mode()
    def run(self, batch: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
        outs = [
            self._run_chunk(batch[i : i + self.max_batch])
            for i in range(0, len(batch), self.max_batch)
        ]
        return nearest_labels(np.concatenate(outs), output_size)

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        with torch.cuda.stream(self.stream):  # the copies and the enqueue share one stream
            image = torch.from_numpy(chunk).pin_memory().cuda(non_blocking=True)
            self.context.set_input_shape(self.in_name, tuple(image.shape))
            out_shape = tuple(self.context.get_tensor_shape(self.out_name))
            out = torch.empty(out_shape, dtype=torch.uint8, device="cuda")
            self.context.set_tensor_address(self.in_name, image.data_ptr())
            self.context.set_tensor_address(self.out_name, out.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise GenadaptError("TensorRT execution failed")
            labels = out.to("cpu", non_blocking=True)
        self.stream.synchronize()  # `labels` is complete only once the stream has drained
        return labels.numpy()
