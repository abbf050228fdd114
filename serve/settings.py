"""Service settings: flags, then GENADAPT_* environment variables, then these defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from genadapt.imaging import DEFAULT_MAX_PIXELS
from genadapt.runtime.options import RuntimeOptions
from genadapt.serve.pipeline import MAX_OUTPUT_PIXELS


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENADAPT_", extra="ignore")

    model: str = Field("", description="checkpoint.pt, exported .onnx or .engine")
    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "auto"
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="cuda fails at start-up without a GPU instead of using the CPU"
    )
    precision: Literal["fp16", "fp32"] = Field(
        "fp16", description="on a GPU: PyTorch and ONNX Runtime's TensorRT provider"
    )
    cache_dir: Path | None = Field(
        None, description="engines built at load time (default: ~/.cache/genadapt)"
    )
    upsample: str = "bilinear"
    compile: str | None = Field(None, description="torch.compile mode (PyTorch backend)")
    max_batch: int = Field(4, ge=1, description="requests run together by the worker")
    batch_delay_ms: float = Field(2.0, ge=0, description="how long a batch waits to fill")
    max_queue: int = Field(32, ge=1, description="waiting requests before 503")
    request_timeout_s: float = Field(30.0, gt=0, description="after this, 504")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1)
    api_key: str = Field("", description="if set, /v1/* needs X-API-Key or a Bearer token")
    protect_ops: bool = Field(
        False, description="with an API key, also require it for /metrics and the API docs"
    )
    # Memory and connections: what keeps a hostile or broken client from taking the service.
    memory_budget_mb: int = Field(
        1024, ge=64, description="bytes that image decodes and encodes may hold at once"
    )
    max_output_pixels: int = Field(
        MAX_OUTPUT_PIXELS, ge=1, description="size=input answers are scaled down to fit this"
    )
    body_timeout_s: float = Field(20.0, gt=0, description="whole upload, else 408")
    header_timeout_s: float = Field(10.0, gt=0, description="request headers, else 408")
    keep_alive_s: int = Field(5, ge=1, description="idle keep-alive connections are closed")
    max_connections: int = Field(
        256, ge=1, description="open connections; more are answered 503 and closed at once"
    )
    output_scale: int = Field(2, ge=1, description="label maps at this × the network size")
    png_compression: int = Field(1, ge=0, le=9)
    workers_io: int = Field(
        default_factory=lambda: max(4, os.cpu_count() or 1),
        ge=1,
        description="threads that decode and encode images (default: the machine's cores, at "
        "least 4): decodes and encodes let go of the GIL, so each core takes one",
    )

    def runtime_options(self) -> RuntimeOptions:
        """How the model is run: the settings `load_segmenter` takes."""
        return RuntimeOptions(
            backend=self.backend,
            device=self.device,
            precision=self.precision,
            upsample=self.upsample,
            max_batch=self.max_batch,
            cache_dir=self.cache_dir,
            compile=self.compile,
        )
