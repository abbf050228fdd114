"""`genadapt-serve MODEL`: the segmentation service on uvicorn.

Settings come from flags, then GENADAPT_* environment variables (e.g. GENADAPT_API_KEY), then
defaults. SIGTERM stops accepting, finishes in-flight requests, then exits.
"""

from __future__ import annotations

import argparse
import logging
import sys

from genadapt.cli import add_runtime_arguments, run_cli, setup_logging
from genadapt.errors import GenadaptError
from genadapt.serve.settings import ServeSettings

log = logging.getLogger(__name__)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genadapt-serve", description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="checkpoint.pt, .onnx or .engine (or GENADAPT_MODEL)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    add_runtime_arguments(p, precision=True, defaults=False)  # unset: settings decide
    p.add_argument("--cache-dir", dest="cache_dir", help="engines built at load time")
    p.add_argument("--max-batch", type=int, dest="max_batch")
    p.add_argument("--max-queue", type=int, dest="max_queue")
    p.add_argument("--max-upload-bytes", type=int, dest="max_upload_bytes")
    p.add_argument("--max-pixels", type=int, dest="max_pixels")
    p.add_argument("--request-timeout-s", type=float, dest="request_timeout_s")
    p.add_argument("--api-key", dest="api_key")
    p.add_argument("--output-scale", type=int, dest="output_scale")
    p.add_argument("--memory-budget-mb", type=int, dest="memory_budget_mb")
    p.add_argument("--max-connections", type=int, dest="max_connections")
    p.add_argument(
        "--protect-ops",
        action="store_true",
        default=None,
        dest="protect_ops",
        help="with --api-key, also require it for /metrics and the API docs",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from genadapt.serve.app import create_app

    flags = {k: v for k, v in vars(args).items() if v is not None and k != "verbose"}
    try:
        settings = ServeSettings(**flags)
    except ValidationError as exc:
        raise GenadaptError(
            f"bad setting: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
        ) from None
    if not settings.model:
        raise GenadaptError("give a MODEL path (or set GENADAPT_MODEL)")
    run_server(create_app(settings), settings)
    return 0


def run_server(app, settings: ServeSettings) -> None:
    """Serve `app` with uvicorn on the guarded h11 protocol, until SIGTERM."""
    import uvicorn

    from genadapt.serve.connections import guarded_protocol, raise_open_file_limit

    limit = raise_open_file_limit()
    if settings.max_connections + 64 > limit:
        log.warning(
            "max_connections %d is close to the open-file limit %d", settings.max_connections, limit
        )
    refused = app.state.metrics.requests
    protocol = guarded_protocol(
        settings.max_connections,
        settings.header_timeout_s,
        lambda status: refused.labels(path="connection", status=str(status)).inc(),
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol,
        log_level="info",
        timeout_keep_alive=settings.keep_alive_s,
        timeout_graceful_shutdown=int(settings.request_timeout_s) + 5,
    )


def cli(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_cli("genadapt-serve", lambda: main(args), argv)


if __name__ == "__main__":
    sys.exit(cli())
