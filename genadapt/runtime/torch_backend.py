"""PyTorch backend: a checkpoint's F+C on the CPU, or on CUDA in fp16, channels_last, with one
CUDA graph per batch size. Normalization, upsampling and argmax run on the device; only uint8
labels come back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention

from genadapt.checkpoint import Checkpoint, load_checkpoint
from genadapt.imaging import Upsample, logits_to_labels
from genadapt.model import FCN8s
from genadapt.runtime.base import Segmenter
from genadapt.runtime.options import GPU_PRECISIONS
from genadapt.spec import ModelSpec, Precision, check_precision

log = logging.getLogger(__name__)


class TorchSegmenter(Segmenter):
    backend = "torch"

    def __init__(
        self,
        model: FCN8s,
        spec: ModelSpec,
        cuda_graphs: bool = True,
        compile_mode: str | None = None,
    ) -> None:
        self.model = model  # in eval mode: from_checkpoint sees to it; the trainer switches it
        self.torch_device = next(model.parameters()).device
        self.device = str(self.torch_device)
        cuda = self.torch_device.type == "cuda"
        half = cuda and next(model.parameters()).dtype == torch.float16
        self.dtype = torch.float16 if half else torch.float32
        super().__init__(spec.replace(precision="fp16" if half else "fp32"))
        # torch.compile's modes other than "default" capture CUDA graphs themselves.
        self.compile_mode = compile_mode
        self.cuda_graphs = cuda and cuda_graphs and compile_mode in (None, "default")
        self._graphs: dict[tuple, Callable[[torch.Tensor], torch.Tensor]] = {}
        self._pinned: dict[tuple, torch.Tensor] = {}  # page-locked staging, one per shape
        self.network = model
        if compile_mode is not None:
            # Inductor keeps what it compiled in its on-disk cache (~/.cache or TORCHINDUCTOR_
            # CACHE_DIR): a second start of the same model reuses it, in seconds.
            self.network = torch.compile(model, mode=compile_mode, dynamic=False)
        norm = spec.normalization
        self.mean = torch.tensor(norm.mean, device=self.torch_device).view(1, 3, 1, 1)
        self.std = torch.tensor(norm.std, device=self.torch_device).view(1, 3, 1, 1)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Checkpoint,
        device: str = "cpu",
        precision: Precision = "fp16",
        upsample: Upsample = "bilinear",
        cuda_graphs: bool = True,
        compile_mode: str | None = None,
    ) -> TorchSegmenter:
        """F+C of a checkpoint on `device`; on CUDA channels_last, in `precision` (fp16 or
        fp32); a CPU always runs fp32."""
        check_precision(precision, GPU_PRECISIONS, "precision on a GPU")
        dev = torch.device(device)
        model = checkpoint.build_model().to(dev)
        if dev.type == "cuda":
            # Fixed shapes: cuDNN's benchmark mode picks the fastest algorithm once per shape.
            torch.backends.cudnn.benchmark = True
            model = model.to(memory_format=torch.channels_last)
            if precision == "fp16":
                model = model.half()
        spec = checkpoint.spec.replace(upsample=upsample)
        return cls(model, spec, cuda_graphs, compile_mode)

    @classmethod
    def from_path(cls, path: str | Path, device: str = "cpu", **kwargs) -> TorchSegmenter:
        return cls.from_checkpoint(load_checkpoint(path), device, **kwargs)

    def segment(
        self, images: list[np.ndarray], output_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """As `Segmenter.segment`; on a GPU, same-sized images go up as they are and are resized
        there (antialiased bilinear, as Pillow's), inside the CUDA graph: a 2048×1024 frame then
        costs one upload and no CPU resize."""
        shapes = {np.shape(img) for img in images}
        if self.torch_device.type != "cuda" or len(shapes) != 1:
            return super().segment(images, output_size)
        first = np.asarray(images[0])
        batch = first[None] if len(images) == 1 else np.stack([np.asarray(i) for i in images])
        return self.run(batch, output_size or self.spec.output_size)

    def _labels(self, image: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        """uint8 (N, H, W, 3) on the device → uint8 labels (N, out_H, out_W) on the device. An
        image not at the network size is resized here first (see `segment`)."""
        return logits_to_labels(self.network(self._prepare(image)), output_size, self.spec.upsample)

    def _prepare(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) on the device → the network's normalized input."""
        x = image.permute(0, 3, 1, 2).float()
        width, height = self.spec.input_size
        if x.shape[-2:] != (height, width):
            # Rounded as Pillow's uint8 result is, so that both paths see the same pixels.
            x = F.interpolate(x, (height, width), mode="bilinear", antialias=True).round_()
        x = x.div_(255).sub_(self.mean).div_(self.std)
        if self.torch_device.type == "cuda":
            x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        return x

    @torch.inference_mode()
    def run_by_stage(
        self, batch: np.ndarray, output_size: tuple[int, int]
    ) -> tuple[np.ndarray, dict[str, float]]:
        """As `run`, without a CUDA graph and waiting for the device after each stage, to time
        it: upload+normalize, network, post-process (upsample + argmax), copy to the host. For
        profiling: the waits cost what `run` saves."""
        times: dict[str, float] = {}
        started = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal started
            if self.torch_device.type == "cuda":
                torch.cuda.synchronize(self.torch_device)
            now = time.perf_counter()
            times[stage], started = now - started, now

        x = self._prepare(torch.from_numpy(batch).to(self.torch_device))
        lap("upload+normalize")
        logits = self.network(x)
        lap("network")
        labels = logits_to_labels(logits, output_size, self.spec.upsample)
        lap("post-process")
        out = labels.cpu().numpy()
        lap("copy")
        return out, times

    @torch.inference_mode()
    def run(self, batch: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
        host = self._staged(batch)
        if not self.cuda_graphs:
            image = host.to(self.torch_device, non_blocking=True)
            return self._labels(image, output_size).cpu().numpy()
        key = (*host.shape, *output_size)
        if key not in self._graphs:
            self._graphs[key] = self._capture(host.to(self.torch_device), output_size)
        return self._graphs[key](host).cpu().numpy()

    def _staged(self, batch: np.ndarray) -> torch.Tensor:
        """The batch on the host, for the copy to the device: on a GPU in a page-locked buffer
        kept per shape (a pageable copy goes through a bounce buffer and cannot overlap)."""
        if self.torch_device.type != "cuda":
            return torch.from_numpy(batch)
        pinned = self._pinned.get(batch.shape)
        if pinned is None:
            pinned = self._pinned[batch.shape] = torch.empty(
                batch.shape, dtype=torch.uint8, pin_memory=True
            )
        pinned.numpy()[...] = batch
        return pinned

    def _capture(self, example: torch.Tensor, output_size: tuple[int, int]):
        """Record the whole pre → network → post path once per shape; replay costs one launch."""
        static_in = example.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up: cuDNN picks its algorithms outside the capture
                self._labels(static_in, output_size)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._labels(static_in, output_size)
        log.info("captured a CUDA graph for input %s", tuple(example.shape))

        def replay(host: torch.Tensor) -> torch.Tensor:
            static_in.copy_(host, non_blocking=True)  # straight from the staging buffer
            graph.replay()
            return static_out

        return replay
