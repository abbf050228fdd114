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
from genadapt.runtime.ort_providers import (
    TensorrtProfile,
    choose_providers,
    default_cache_dir,
    import_onnxruntime,
    tensorrt_options,
)
from genadapt.sidecar import load_sidecar, verify_artifact

log = logging.getLogger(__name__)


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
        wanted = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
        if device in wanted and wanted[device] not in self.providers:
            # ONNX Runtime falls back to the CPU when a GPU provider fails to load (a missing
            # CUDA or cuDNN library, say) and only logs it: refuse instead of running slowly.
            raise GenadaptError(
                f"ONNX Runtime could not start {wanted[device]} (it runs {self.providers}); "
                "check that the CUDA, cuDNN (and TensorRT) libraries match onnxruntime-gpu"
            )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        device: str = "cpu",
        *,
        fp16: bool = True,
        max_batch: int = 8,
        cache_dir: Path | None = None,
    ) -> OnnxSegmenter:
        """An exported .onnx; its sidecar says the flavour, classes and sizes.

        On the TensorRT provider, `fp16` and `max_batch` shape the engine it builds (one
        optimization profile over batch 1…max_batch), cached under `cache_dir` (default: the
        user's cache folder, since the model's own folder is often mounted read-only)."""
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
        ort = import_onnxruntime()
        trt_options = None
        if device == "tensorrt":
            cache = (cache_dir or default_cache_dir()) / "ort-tensorrt" / artifact.sha256[:16]
            cache.mkdir(parents=True, exist_ok=True)
            profile = TensorrtProfile(
                artifact.input_name, tuple(artifact.input_shape[1:]), max_batch
            )
            trt_options = tensorrt_options(profile, cache, fp16)
        providers = choose_providers(device, ort.get_available_providers(), tensorrt=trt_options)
        segmenter = cls(path, artifact.flavour, like, device, providers)
        segmenter.precision = "fp16" if device == "tensorrt" and fp16 else artifact.precision
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
        providers = choose_providers(device, import_onnxruntime().get_available_providers())
        return cls(data, flavour, like, device, providers)

    def run(self, batch: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
        if self.flavour == "labels":
            labels = self.session.run([self.out_name], {self.in_name: batch})[0]
            return nearest_labels(labels, output_size)
        x = normalize_batch(batch, self.normalization)
        logits = self.session.run([self.out_name], {self.in_name: x})[0]
        return logits_to_labels(torch.from_numpy(logits), output_size, self.upsample).numpy()

    def describe(self) -> dict:
        return {**super().describe(), "flavour": self.flavour, "providers": self.providers}
