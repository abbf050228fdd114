"""A Triton Python-backend model that runs genadapt's runtime on the labels graph beside it.

`genadapt-export --triton` copies this file to `triton/genadapt-python/1/model.py`, with
`model.labels.onnx` and `model.json` next to it, so that the repository serves on any Triton:
NVIDIA's containers (which also serve `triton/genadapt`, the ONNX Runtime or TensorRT model)
and a bare `tritonserver` with only its Python backend. It takes the inputs and outputs of the
ONNX/TensorRT config (uint8 images at the network size in, uint8 label maps at 2× out) with
the same dynamic batching: the requests Triton hands over together run as one batch.

genadapt must be importable by the backend's Python: installed there, or named by the
GENADAPT_PYTHONPATH environment variable of the server (a site-packages folder, say). The
model's parameter `genadapt_device` (auto, cpu, cuda) says where it runs.
"""

import json
import os
import site
from pathlib import Path

# Site folders (their .pth files included, as an editable install needs) before genadapt.
for _entry in os.environ.get("GENADAPT_PYTHONPATH", "").split(os.pathsep):
    if _entry:
        site.addsitedir(_entry)

import numpy as np  # noqa: E402 - after the path above
import triton_python_backend_utils as pb_utils  # noqa: E402 - provided by the Python backend
from torch import from_numpy  # noqa: E402 - genadapt's own dependency
from torch.utils.dlpack import from_dlpack, to_dlpack  # noqa: E402

GRAPH = "model.labels.onnx"


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        from genadapt.runtime import RuntimeOptions, load_segmenter

        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        here = Path(args["model_repository"]) / args["model_version"]
        options = RuntimeOptions(device=params.get("genadapt_device", "auto"))
        self.segmenter = load_segmenter(here / GRAPH, options)
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]

    def execute(self, requests: list) -> list:
        """Every request of this call in one batch through the network, split back per request
        (each may carry a batch of its own)."""
        arrays = [
            from_dlpack(pb_utils.get_input_tensor_by_name(r, self.input_name).to_dlpack()).numpy()
            for r in requests
        ]
        try:
            labels = self.segmenter.run(np.concatenate(arrays), self.segmenter.spec.output_size)
        except Exception as exc:  # every request of the batch gets the error, the server stays up
            error = pb_utils.TritonError(f"genadapt: {type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, start = [], 0
        for array in arrays:
            part = np.ascontiguousarray(labels[start : start + len(array)])
            start += len(array)
            # In and out through DLPack, not the backend's NumPy conversions: the backend is
            # built against NumPy 1, and with NumPy 2 installed those return empty or wrong data.
            tensor = pb_utils.Tensor.from_dlpack(self.output_name, to_dlpack(from_numpy(part)))
            responses.append(pb_utils.InferenceResponse([tensor]))
        return responses
