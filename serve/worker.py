"""The inference worker: one thread owns the model (and its GPU stream); requests wait in a
bounded queue and are run in micro-batches of up to `max_batch`, gathered within a few ms."""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from genadapt.runtime import Segmenter

log = logging.getLogger(__name__)


class QueueFullError(Exception):
    """The service is at capacity: the caller should retry later (503)."""


@dataclass
class Job:
    image: np.ndarray  # uint8 (H, W, 3) at the network size
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)
    queue_wait: float = 0.0
    inference: float = 0.0
    batch_size: int = 0


class InferenceWorker:
    def __init__(self, segmenter: Segmenter, max_batch: int, batch_delay_s: float, max_queue: int):
        self.segmenter = segmenter
        self.max_batch, self.batch_delay_s = max_batch, batch_delay_s
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        # Requests being decoded, about to be submitted: worth waiting for; when there are
        # none, a lone request runs at once instead of paying the batching delay.
        self._incoming = 0
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="genadapt-inference", daemon=True)
        self.thread.start()

    def submit(self, image: np.ndarray) -> Job:
        job = Job(image)
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise QueueFullError from None
        return job

    def incoming(self, delta: int) -> None:
        with self._lock:
            self._incoming += delta

    def depth(self) -> int:
        return self.jobs.qsize()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then end the thread."""
        self.jobs.put(None)
        self.thread.join(timeout)

    def _loop(self) -> None:
        while True:
            first = self.jobs.get()
            if first is None:
                return
            batch = [first]
            with self._lock:
                nothing_coming = self._incoming == 0 and self.jobs.empty()
            deadline = time.perf_counter() + (0.0 if nothing_coming else self.batch_delay_s)
            stop = False
            while len(batch) < self.max_batch:
                try:
                    job = self.jobs.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._run([j for j in batch if j.future.set_running_or_notify_cancel()])
            if stop:
                return

    def _run(self, batch: list[Job]) -> None:
        if not batch:
            return  # every job timed out and was cancelled while queued
        start = time.perf_counter()
        try:
            labels = self.segmenter.run(
                np.stack([j.image for j in batch]), self.segmenter.spec.output_size
            )
        except Exception as exc:  # a model failure fails these requests, not the worker
            log.exception("inference failed for a batch of %d", len(batch))
            for job in batch:
                job.future.set_exception(exc)
            return
        elapsed = time.perf_counter() - start
        for job, result in zip(batch, labels, strict=True):
            job.queue_wait, job.inference, job.batch_size = (
                start - job.enqueued,
                elapsed,
                len(batch),
            )
            job.future.set_result(result)
