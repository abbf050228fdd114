"""A minimal client of the service: wait until it is ready, segment images, save the results.

genadapt-client http://127.0.0.1:8000 IMAGE... --out DIR [--api-key KEY]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from genadapt.cli import run_cli, setup_logging
from genadapt.errors import GenadaptError
from genadapt.fileio import atomic_write_bytes

log = logging.getLogger(__name__)


def wait_ready(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.time() > deadline:
            raise GenadaptError(f"{url} was not ready within {timeout:.0f} s")
        time.sleep(0.2)


def segment(url: str, image: Path, fmt: str, api_key: str | None) -> tuple[bytes, dict]:
    content_type = "image/jpeg" if image.suffix.lower() in (".jpg", ".jpeg") else "image/png"
    headers = {"content-type": content_type}
    if api_key:
        headers["x-api-key"] = api_key
    request = urllib.request.Request(
        f"{url}/v1/segment?format={fmt}", data=image.read_bytes(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            timing = response.headers.get("server-timing", "")
            return response.read(), {"server_timing": timing}
    except urllib.error.HTTPError as exc:
        raise GenadaptError(
            f"{image}: HTTP {exc.code}: {exc.read().decode(errors='replace')}"
        ) from None


def main(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/")
    wait_ready(url, args.wait)
    for image in args.images:
        for fmt, suffix in (("png", "_labels.png"), ("overlay", "_overlay.jpg")):
            body, info = segment(url, image, fmt, args.api_key)
            atomic_write_bytes(args.out / f"{image.stem}{suffix}", body)
        print(json.dumps({"image": str(image), "out": str(args.out), **info}))
    return 0


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genadapt-client", description=__doc__)
    p.add_argument("url")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--api-key", default=None)
    p.add_argument("--wait", type=float, default=120, help="seconds to wait for /readyz")
    return p


def cli(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging()
    return run_cli("genadapt-client", lambda: main(args), argv)


if __name__ == "__main__":
    sys.exit(cli())
