"""`genadapt-bench pipeline`: a 2048×1024 JPEG on the host → a label map on the host, by stage.

decode (Pillow, JPEG draft mode straight to about the network size) → pre-process (resize to
the network size) → network → post-process (×2 upsample + argmax) → copy to the host → PNG
encode. ONNX Runtime's labels flavour fuses network and post-processing in one graph.
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch
from PIL import Image

from genadapt.benchmarks.timing import (
    environment,
    summarize,
    sync,
    time_calls,
    watching_the_machine,
)
from genadapt.checkpoint import Checkpoint
from genadapt.errors import GenadaptError
from genadapt.imaging import decode_image, encode_png, logits_to_labels, resize_rgb
from genadapt.runtime.onnx_backend import OnnxSegmenter
from genadapt.runtime.torch_backend import TorchSegmenter
from genadapt.scenes.generate import SceneSpec, make_scene


def sample_jpeg(size=(2048, 1024)) -> bytes:
    rgb, _ = make_scene(SceneSpec("target", "val", 0, size, seed=5))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _torch_stages(seg: TorchSegmenter, batch: np.ndarray) -> dict[str, float]:
    dev = seg.torch_device
    times = {}
    t = time.perf_counter()
    image = torch.from_numpy(batch).to(dev)
    x = image.permute(0, 3, 1, 2).float().div_(255).sub_(seg.mean).div_(seg.std)
    if dev.type == "cuda":
        x = x.to(seg.dtype).contiguous(memory_format=torch.channels_last)
    sync(dev)
    times["upload+normalize"] = time.perf_counter() - t
    t = time.perf_counter()
    with torch.inference_mode():
        logits = seg.model(x)
    sync(dev)
    times["network"] = time.perf_counter() - t
    t = time.perf_counter()
    labels = logits_to_labels(logits, seg.spec.output_size, seg.spec.upsample)
    sync(dev)
    times["post-process"] = time.perf_counter() - t
    t = time.perf_counter()
    labels.cpu().numpy()
    times["copy"] = time.perf_counter() - t
    return times


def run_pipeline(checkpoint: Checkpoint, backends: list[str], reps: int, device: str) -> dict:
    data = sample_jpeg()
    results = {
        "environment": environment(device),
        "input": "2048x1024 JPEG q90",
        "network_size": list(checkpoint.spec.input_size),
        "backends": {},
        "segmenters": {},  # what each backend actually ran on (device, providers)
        "machine": {},  # what else the machine did during each backend's measurement
    }
    for backend in backends:
        try:
            seg = _segmenter(checkpoint, backend, device)
        except Exception as exc:  # reported as skipped with the reason, never as zero
            results["backends"][backend] = {"skipped": str(exc)}
            continue
        results["segmenters"][backend] = seg.describe()
        stages: dict[str, list[float]] = {}
        with watching_the_machine() as results["machine"][backend]:
            _measure(data, seg, backend, reps, stages)
        results["backends"][backend] = {k: summarize(v) for k, v in stages.items()}
    if "torch" in backends:
        results["host_to_host"] = host_to_host(checkpoint, device, data, reps)
    return results


def host_to_host(checkpoint: Checkpoint, device: str, data: bytes, reps: int) -> dict:
    """A decoded 2048×1024 uint8 frame on the host → its 2048×1024 label map on the host, with
    either upsampling: upload, resize (on the GPU there), network, upsample + argmax, copy back.
    What a camera pipeline that decodes elsewhere pays per frame (no JPEG, no PNG)."""
    frame = decode_image(data)
    rows = {"input": f"{frame.shape[1]}x{frame.shape[0]} uint8 RGB on the host"}
    output = (frame.shape[1], frame.shape[0])
    for upsample in ("bilinear", "nearest"):
        seg = TorchSegmenter.from_checkpoint(checkpoint, device, upsample=upsample)
        samples = time_calls(lambda s=seg: s.segment([frame], output), device, 3, reps)
        rows[f"torch {upsample}"] = summarize(samples) | {"segmenter": seg.describe()}
    return rows


def _segmenter(checkpoint: Checkpoint, backend: str, device: str):
    if backend == "torch":
        return TorchSegmenter.from_checkpoint(checkpoint, device, cuda_graphs=False)
    if backend == "onnxruntime-int8":
        if device.startswith("cuda"):
            raise GenadaptError("INT8 ONNX is for CPUs (a GPU takes a TensorRT INT8 engine)")
        from genadapt.benchmarks.int8 import int8_segmenter

        return int8_segmenter(checkpoint)
    ort_device = "cuda" if device.startswith("cuda") else "cpu"
    return OnnxSegmenter.from_checkpoint(checkpoint, ort_device)


def _measure(data: bytes, seg, backend: str, reps: int, stages: dict[str, list[float]]) -> None:
    """Time each stage of one image, host to host, `reps` times after two warm-up passes."""
    for rep in range(reps + 2):  # two warm-up passes
        times = {}
        t = time.perf_counter()
        rgb = decode_image(data, draft_size=seg.spec.input_size)  # as the service decodes
        times["decode"] = time.perf_counter() - t
        t = time.perf_counter()
        batch = resize_rgb(rgb, seg.spec.input_size)[None]
        times["pre-process"] = time.perf_counter() - t
        if backend == "torch":
            times |= _torch_stages(seg, batch)
            labels = seg.run(batch, seg.spec.output_size)[0]
        else:
            t = time.perf_counter()
            labels = seg.run(batch, seg.spec.output_size)[0]
            times["network+post-process+copy"] = time.perf_counter() - t
        t = time.perf_counter()
        encode_png(labels)
        times["png encode"] = time.perf_counter() - t
        times["total"] = sum(times.values())
        if rep >= 2:
            for k, v in times.items():
                stages.setdefault(k, []).append(v)
