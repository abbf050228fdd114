"""Timing done right: warm-up, device synchronization before reading the clock, percentiles."""

from __future__ import annotations

import platform
import resource
import time
from collections.abc import Callable

import numpy as np
import torch


def summarize(samples_s: list[float], items_per_call: int = 1) -> dict:
    """Percentiles in milliseconds and throughput from per-call wall times in seconds."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1000
    if ms.size == 0:
        raise ValueError("no samples")
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "n": int(ms.size),
        "mean_ms": round(float(ms.mean()), 3),
        "p50_ms": round(float(p50), 3),
        "p90_ms": round(float(p90), 3),
        "p99_ms": round(float(p99), 3),
        "min_ms": round(float(ms.min()), 3),
        "items_per_s": round(items_per_call * 1000 / float(p50), 3),
    }


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_calls(
    fn: Callable[[], object],
    device: torch.device | str,
    warmup: int,
    reps: int,
    budget_s: float | None = None,
) -> list[float]:
    """Wall time of each of `reps` calls after `warmup` calls, synchronizing the device; stops
    early (keeping at least 3 samples) once `budget_s` is spent."""
    for _ in range(warmup):
        fn()
    sync(device)
    samples: list[float] = []
    started = time.perf_counter()
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        samples.append(time.perf_counter() - t0)
        if budget_s is not None and len(samples) >= 3 and time.perf_counter() - started > budget_s:
            break
    return samples


def peak_memory_mb(device: torch.device | str) -> float:
    """Peak device memory since the last reset (CUDA), or the process's peak RSS (CPU)."""
    if torch.device(device).type == "cuda":
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def environment(device: torch.device | str) -> dict:
    info = {
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if torch.device(device).type == "cuda":
        info |= {"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def device_name(device: torch.device | str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({torch.get_num_threads()} threads)"
