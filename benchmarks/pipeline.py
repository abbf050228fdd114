"""`genadapt-bench pipeline`: a 2048×1024 JPEG on the host → a label map on the host, by stage.

The service's own pipeline (`serve.pipeline.segment_bytes`): decode as predict and serve do
(JPEG draft mode, then resize to the network size) → the network with its ×2 upsample and
argmax, back on the host → PNG encode. For PyTorch the network's part is also split into
upload+normalize, network, post-process and copy (`TorchSegmenter.run_by_stage`).
"""

from __future__ import annotations

import io

from PIL import Image

from genadapt.benchmarks.common import INT8
from genadapt.benchmarks.timing import (
    environment,
    summarize,
    time_calls,
    watching_the_machine,
)
from genadapt.checkpoint import Checkpoint
from genadapt.errors import GenadaptError
from genadapt.imaging import decode_image
from genadapt.runtime.onnx_backend import OnnxSegmenter
from genadapt.runtime.torch_backend import TorchSegmenter
from genadapt.scenes.generate import SceneSpec, make_scene
from genadapt.serve.pipeline import SegmentPipeline, segment_bytes


def sample_jpeg(size=(2048, 1024)) -> bytes:
    rgb, _ = make_scene(SceneSpec("target", "val", 0, size, seed=5))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


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
    if backend == INT8:
        if device.startswith("cuda"):
            raise GenadaptError("INT8 ONNX is for CPUs (a GPU takes a TensorRT INT8 engine)")
        from genadapt.benchmarks.int8 import int8_segmenter

        return int8_segmenter(checkpoint)
    ort_device = "cuda" if device.startswith("cuda") else "cpu"
    return OnnxSegmenter.from_checkpoint(checkpoint, ort_device)


def _measure(data: bytes, seg, backend: str, reps: int, stages: dict[str, list[float]]) -> None:
    """Time the service's stages for one image, `reps` times after two warm-up passes."""
    pipeline = SegmentPipeline(seg.spec)
    batch = pipeline.decode(data).network_input[None]
    for rep in range(reps + 2):  # two warm-up passes
        _, times = segment_bytes(data, seg, pipeline)
        if backend == "torch":  # where the network's time goes
            _, network = seg.run_by_stage(batch, seg.spec.output_size)
            times |= {f"network: {stage}": seconds for stage, seconds in network.items()}
        if rep >= 2:
            for k, v in times.items():
                stages.setdefault(k, []).append(v)
