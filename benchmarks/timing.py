"""Timing done right: warm-up, device synchronization before reading the clock, percentiles."""

from __future__ import annotations

import os
import platform
import re
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from genadapt.provenance import cpu_features, cpu_model


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
    early (keeping at least 3 samples) once `budget_s` is spent. A GPU's peak-memory counter
    restarts after the warm-up, whose algorithm searches (cuDNN's benchmark mode tries
    convolutions with workspaces of tens of GB) are not what the measured calls hold."""
    for _ in range(warmup):
        fn()
    sync(device)
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
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


def time_in_turns(
    fns: dict[str, Callable[[], object]], device: torch.device | str, rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall time of each function's calls, the functions taking turns call by call for
    `rounds` rounds (after `warmup` turns each): every function is timed in the same minutes,
    so the ratio of their medians holds on a host whose speed drifts, which timing one after
    the other does not (a shared 2-core host drifts by up to 1.5× within minutes)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync(device)
            samples[name].append(time.perf_counter() - t0)
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
    else:  # what the CPU's kernels can use: INT8 gains most with VNNI, fp32 with AVX-512
        info["cpu_features"] = cpu_features()
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def device_name(device: torch.device | str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return f"{cpu_model()} ({torch.get_num_threads()} threads)"


# Words of a CPU's model name that tell two machines apart by nothing: trademark marks, and
# "Processor" or "CPU" (Intel's virtual CPUs call themselves "Intel(R) Xeon(R) Processor").
_NAME_NOISE = re.compile(r"\((?:R|TM)\)|\b(?:Processor|CPU)\b", re.IGNORECASE)


def results_folder_name(name: str) -> str:
    """The folder under benchmarks/results/ that a device's reports go to: "Intel(R) Xeon(R)
    Processor (2 threads)" → "intel-xeon-2-threads", "NVIDIA H200" → "nvidia-h200"."""
    return re.sub(r"[^a-z0-9]+", "-", _NAME_NOISE.sub(" ", name).lower()).strip("-")


# Other processes may use this share of all CPUs during a measurement before it is marked
# contended: on 2 shared cores, a neighbour's job doubles a latency (README, Performance).
CONTENDED_SHARE = 0.10


def _busy_cpu_seconds() -> float | None:
    """CPU time spent by every process on the machine since boot (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(pids: list[int]) -> float:
    """CPU time of this process, its finished children and the live processes `pids`."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


@contextmanager
def watching_the_machine(pids: list[int] | None = None) -> Iterator[dict]:
    """Measure what else the machine did meanwhile: the load average before and after, and the
    share of all CPUs that other processes (not this one, nor `pids`) used. The dict is filled
    when the block ends; `contended` says whether the numbers measured in it can be trusted."""
    pids = list(pids or [])
    report: dict = {"loadavg_before": round(os.getloadavg()[0], 2)}
    busy, ours, started = _busy_cpu_seconds(), _process_cpu_seconds(pids), time.perf_counter()
    try:
        yield report
    finally:
        wall = time.perf_counter() - started
        busy_after = _busy_cpu_seconds()
        report["loadavg_after"] = round(os.getloadavg()[0], 2)
        if busy is not None and busy_after is not None and wall > 0:
            others = (busy_after - busy) - (_process_cpu_seconds(pids) - ours)
            share = max(0.0, others / (wall * (os.cpu_count() or 1)))
            report["others_cpu_share"] = round(share, 3)
            report["contended"] = share > CONTENDED_SHARE
