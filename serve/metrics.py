"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "genadapt_requests_total", "HTTP requests", ["path", "status"], registry=r
        )
        self.stages = {
            stage: Histogram(
                f"genadapt_{stage}_seconds", f"time in {stage}", buckets=BUCKETS, registry=r
            )
            for stage in ("queue_wait", "io_wait", "inference", "decode", "encode", "request")
        }
        self.batch_size = Histogram(
            "genadapt_batch_size",
            "requests per inference batch",
            buckets=(1, 2, 4, 8, 16, 32),
            registry=r,
        )
        self.queue_depth = Gauge("genadapt_queue_depth", "requests waiting", registry=r)
        self.ready = Gauge("genadapt_ready", "1 once the model is loaded and warmed up", registry=r)
        self.budget_used = Gauge(
            "genadapt_memory_budget_used_bytes",
            "bytes of the memory budget held by decodes, encodes and answers not yet sent",
            registry=r,
        )
