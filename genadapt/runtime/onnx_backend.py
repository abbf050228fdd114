"""ONNX Runtime backend: an exported file (described by its model.json) or a checkpoint exported
in memory. CPU by default; with onnxruntime-gpu, the CUDA (and optionally TensorRT) execution
providers, where the `labels` flavour keeps pre- and post-processing on the GPU."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from genadapt.checkpoint import Checkpoint
from genadapt.errors import GenadaptError
from genadapt.imaging import Upsample, logits_to_labels, nearest_labels, normalize_batch
from genadapt.onnx_graph import IO_NAMES, export_graph
from genadapt.runtime.base import Segmenter
from genadapt.sidecar import load_sidecar, verify_artifact

log = logging.getLogger(__name__)


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise GenadaptError(
            "the onnxruntime backend needs onnxruntime (CPU) or onnxruntime-gpu: "
            "pip install onnxruntime  (or: pip install 'genadapt[gpu]')"
        ) from None
    return onnxruntime


def choose_providers(device: str, tensorrt_cache: Path | None = None, fp16: bool = False) -> list:
    """Execution providers for `device` ('cpu', 'cuda' or 'tensorrt'), best first."""
    ort = import_onnxruntime()
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    wanted = "TensorrtExecutionProvider" if device == "tensorrt" else "CUDAExecutionProvider"
    if wanted not in available:
        raise GenadaptError(
            f"{wanted} is not available (onnxruntime has {available}); install onnxruntime-gpu "
            "and run on a CUDA machine, or use --device cpu"
        )
    providers: list = []
    if device == "tensorrt":
        options = {"trt_fp16_enable": fp16, "trt_engine_cache_enable": tensorrt_cache is not None}
        if tensorrt_cache is not None:
            options["trt_engine_cache_path"] = str(tensorrt_cache)
        providers.append(("TensorrtExecutionProvider", options))
    return [*providers, "CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxSegmenter(Segmenter):
    backend = "onnxruntime"

    def __init__(
        self,
        model_bytes_or_path: bytes | str | Path,
        flavour: str,
        checkpoint_like: dict,
        device: str = "cpu",
        providers: list | None = None,
    ) -> None:
        super().__init__(**checkpoint_like)
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = model_bytes_or_path
        if isinstance(source, Path):
            source = str(source)
        self.session = ort.InferenceSession(
            source, options, providers=providers or ["CPUExecutionProvider"]
        )
        self.flavour = flavour
        self.in_name, self.out_name = IO_NAMES[flavour]
        self.device = device
        self.providers = self.session.get_providers()

    @classmethod
    def from_file(cls, path: str | Path, device: str = "cpu") -> OnnxSegmenter:
        """An exported .onnx; its sidecar says the flavour, classes and sizes."""
        path = Path(path)
        sidecar = load_sidecar(path)
        artifact = sidecar.artifact(path.name)
        verify_artifact(path, artifact)
        like = {
            "label_space": sidecar.labels,
            "input_size": tuple(sidecar.input_size),
            "normalization": sidecar.norm,
            "upsample": sidecar.upsample,
            "output_scale": sidecar.output_scale,
        }
        tensorrt_cache = path.parent / "ort_trt_cache" if device == "tensorrt" else None
        providers = choose_providers(device, tensorrt_cache, fp16=artifact.precision == "fp16")
        segmenter = cls(path, artifact.flavour, like, device, providers)
        segmenter.precision = artifact.precision
        return segmenter

    @classmethod
    def from_checkpoint(
        cls, checkpoint: Checkpoint, device: str = "cpu", upsample: Upsample = "bilinear"
    ) -> OnnxSegmenter:
        """Export F+C in memory (a second or two) and run it with ONNX Runtime."""
        flavour = "labels"  # uint8 in, uint8 out: pre- and post-processing inside the graph
        data = export_graph(checkpoint.build_model(), flavour, checkpoint.input_size,
                            checkpoint.normalization, upsample)  # fmt: skip
        like = {
            "label_space": checkpoint.label_space,
            "input_size": checkpoint.input_size,
            "normalization": checkpoint.normalization,
            "upsample": upsample,
        }
        return cls(data, flavour, like, device, choose_providers(device))

    def run(self, batch: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
        if self.flavour == "labels":
            labels = self.session.run([self.out_name], {self.in_name: batch})[0]
            return nearest_labels(labels, output_size)
        x = normalize_batch(batch, self.normalization)
        logits = self.session.run([self.out_name], {self.in_name: x})[0]
        return logits_to_labels(torch.from_numpy(logits), output_size, self.upsample).numpy()

    def describe(self) -> dict:
        return {**super().describe(), "flavour": self.flavour, "providers": self.providers}
