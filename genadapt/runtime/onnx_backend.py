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
from genadapt.onnx_graph import OnnxGraph, export_graph
from genadapt.runtime.base import Segmenter
from genadapt.runtime.options import RuntimeOptions
from genadapt.runtime.ort_providers import (
    TensorrtProfile,
    choose_providers,
    default_cache_dir,
    import_onnxruntime,
    tensorrt_options,
)
from genadapt.sidecar import load_sidecar, verify_artifact
from genadapt.spec import ModelSpec

log = logging.getLogger(__name__)


class OnnxSegmenter(Segmenter):
    """An F+C graph on ONNX Runtime; `run` for labels, and `logits` for the logits flavour."""

    backend = "onnxruntime"

    def __init__(
        self,
        model: bytes | Path,
        spec: ModelSpec,
        flavour: str,
        device: str = "cpu",
        providers: list | None = None,
    ) -> None:
        super().__init__(spec)
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = str(model) if isinstance(model, Path) else model
        self.session = ort.InferenceSession(
            source, options, providers=providers or ["CPUExecutionProvider"]
        )
        self.flavour = flavour
        self.in_name = self.session.get_inputs()[0].name
        self.out_name = self.session.get_outputs()[0].name
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
        options: RuntimeOptions | None = None,
    ) -> OnnxSegmenter:
        """An exported .onnx; its sidecar says the flavour and the spec.

        On the TensorRT provider, the options' `precision` and `max_batch` shape the engine it
        builds (one optimization profile over batch 1…max_batch), cached under `cache_dir`
        (default: the user's cache folder, since the model's own folder is often mounted
        read-only)."""
        options = options or RuntimeOptions()
        fp16, max_batch, cache_dir = options.fp16, options.max_batch, options.cache_dir
        path = Path(path)
        sidecar = load_sidecar(path)
        artifact = sidecar.artifact(path.name)
        verify_artifact(path, artifact)
        spec = sidecar.spec_for(path.name)
        ort = import_onnxruntime()
        trt_options = None
        if device == "tensorrt":
            cache = (cache_dir or default_cache_dir()) / "ort-tensorrt" / artifact.sha256[:16]
            cache.mkdir(parents=True, exist_ok=True)
            item_shape = tuple(artifact.input_shape[1:])
            trt_options = tensorrt_options(
                TensorrtProfile(artifact.input_name, item_shape, max_batch), cache, fp16
            )
            spec = spec.replace(precision="fp16" if fp16 else spec.precision)
        providers = choose_providers(device, ort.get_available_providers(), tensorrt=trt_options)
        segmenter = cls(path, spec, artifact.flavour, device, providers)
        segmenter.file, segmenter.sha256 = path.name, artifact.sha256
        return segmenter

    @classmethod
    def from_graph(cls, graph: OnnxGraph, spec: ModelSpec, device: str = "cpu") -> OnnxSegmenter:
        """A graph still in memory (the export gate runs it before anything is written)."""
        providers = choose_providers(device, import_onnxruntime().get_available_providers())
        return cls(graph.data, spec, graph.flavour, device, providers)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: Checkpoint, device: str = "cpu", upsample: Upsample = "bilinear"
    ) -> OnnxSegmenter:
        """Export F+C in memory (a second or two) in the labels flavour, whose pre- and
        post-processing run inside the graph, and run it with ONNX Runtime."""
        spec = checkpoint.spec.replace(upsample=upsample)
        return cls.from_graph(export_graph(checkpoint.build_model(), "labels", spec), spec, device)

    def run(self, batch: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
        if self.flavour == "labels":
            labels = self.session.run([self.out_name], {self.in_name: batch})[0]
            return nearest_labels(labels, output_size)
        logits = self.logits(normalize_batch(batch, self.spec.normalization))
        return logits_to_labels(torch.from_numpy(logits), output_size, self.spec.upsample).numpy()

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Normalized float (N, 3, H, W) → logits (N, K, H, W); the logits flavour only."""
        if self.flavour != "logits":
            raise GenadaptError(f"a {self.flavour} graph returns labels, not logits")
        return self.session.run([self.out_name], {self.in_name: x})[0]

    def describe(self) -> dict:
        return {**super().describe(), "flavour": self.flavour, "providers": self.providers}
