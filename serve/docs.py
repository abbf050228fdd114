"""The API docs (Swagger UI at /docs, ReDoc at /redoc) and the favicon, served from the package.

FastAPI's default docs load their JavaScript, CSS and fonts from a CDN and Google Fonts, so on
a machine without internet they are blank pages. The assets here come from the fastapi-offline
package, which ships them, and are served by this service (FastAPI's "self-hosting the docs
assets" recipe); no request leaves the machine.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
FAVICON = Path(__file__).parent / "static" / "favicon.svg"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"  # its only remote asset: the footer logo
router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def _redoc_js() -> bytes:
    """ReDoc's bundle with its one remote URL pointed at a local file."""
    text = (ASSETS / "redoc.standalone.js").read_text(encoding="utf-8")
    return text.replace(REDOC_LOGO, "/favicon.ico").encode()


@router.get("/docs-assets/redoc.standalone.js")
async def redoc_js() -> Response:
    return Response(_redoc_js(), media_type="text/javascript")


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="genadapt API",
        swagger_js_url="/docs-assets/swagger-ui-bundle.js",
        swagger_css_url="/docs-assets/swagger-ui.css",
        swagger_favicon_url="/favicon.ico",
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="genadapt API",
        redoc_js_url="/docs-assets/redoc.standalone.js",
        redoc_favicon_url="/favicon.ico",
        with_google_fonts=False,
    )


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    return FileResponse(FAVICON, media_type="image/svg+xml")


def install_docs(app: FastAPI) -> None:
    """Add the docs routes and their assets; the app must be created with docs_url=None and
    redoc_url=None so that FastAPI's CDN-loading pages are not registered first."""
    app.include_router(router)  # before the mount: the rewritten ReDoc bundle wins
    app.mount("/docs-assets", StaticFiles(directory=ASSETS), name="docs-assets")
