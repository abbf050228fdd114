"""OpenAPI documentation of /v1/segment: its request bodies and responses, each status with
examples of the errors it really carries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from genadapt.serve.errors import BAD_BODY

RAW_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif")
FORMAT_HELP = (
    "png: the train ids (0–18, 255 for none), one byte per pixel. An image viewer shows it "
    "near-black; it is meant for programs. color: the same map in the class colours, for "
    "people. overlay: a JPEG of the colours over the photo. npy: a NumPy uint8 array. json: "
    "each class's pixel count, share and run-length encoding."
)

# /v1/segment's query parameters, with the words /docs shows for them.
FormatParam = Annotated[
    Literal["png", "color", "overlay", "npy", "json"], Query(description=FORMAT_HELP)
]
SizeParam = Annotated[
    Literal["native", "input"],
    Query(
        description="native: 2× the network size (2048×1024 for 1024×512); input: the "
        "uploaded image's size"
    ),
]
OverlayParam = Annotated[bool, Query(description="json only: add a base64 JPEG overlay")]
PhotoParam = Annotated[
    bool,
    Query(
        description="json only: add the photo as the service decoded it, a base64 JPEG at the "
        "answer's size (for a client that cannot show the upload's format, such as TIFF in most "
        "browsers)"
    ),
]


def _numbered(examples: tuple[tuple[str, str], ...]) -> list[tuple[int, tuple[str, str]]]:
    """Each example with how many of the same code came before it (keys must differ)."""
    seen: dict[str, int] = {}
    out = []
    for code, message in examples:
        out.append((seen.get(code, 0), (code, message)))
        seen[code] = seen.get(code, 0) + 1
    return out


def _errors(status: int, description: str, *examples: tuple[str, str]) -> dict:
    """A response entry whose examples are the (code, message) pairs this status carries."""
    return {
        "description": description,
        "content": {
            "application/json": {
                "examples": {
                    f"{code}-{n}" if n else code: {
                        "summary": code,
                        "value": {"error": {"status": status, "code": code, "message": message}},
                    }
                    for n, (code, message) in _numbered(examples)
                }
            }
        },
    }


SEGMENT_RESPONSES: dict[int | str, dict] = {
    200: {
        "description": "The label map at 2× the network size (or the upload's with size=input). "
        + FORMAT_HELP,
        "content": {
            "image/png": {},
            "image/jpeg": {},
            "application/x-npy": {},
            "application/json": {
                "example": {
                    "height": 1024,
                    "width": 2048,
                    "classes": [
                        {
                            "id": 0,
                            "name": "road",
                            "color": [128, 64, 128],
                            "pixels": 734003,
                            "fraction": 0.35,
                            "rle": [1310720, 734003],
                        }
                    ],
                }
            },
        },
    },
    400: _errors(
        400,
        "A request the HTTP parser cannot read: a malformed chunked body, or headers",
        ("bad_request", BAD_BODY),
    ),
    401: _errors(
        401,
        "Missing or wrong API key (X-API-Key header or Bearer token)",
        ("unauthorized", "missing or wrong API key (X-API-Key header)"),
    ),
    408: _errors(
        408,
        "The upload (body_timeout_s) or its headers (header_timeout_s) came too slowly; the "
        "connection is closed",
        ("upload_timeout", "the upload did not arrive within 20 s"),
        ("header_timeout", "request headers did not arrive within 10 s"),
    ),
    413: _errors(
        413,
        "Too large: the body (max_upload_bytes), the image's pixels (max_pixels), or an image "
        "that could never fit the memory budget",
        ("too_large", "request body over 21.0 MB"),
        (
            "too_many_pixels",
            "image has 8000x7500 = 60.0 megapixels, more than the allowed 40.0 megapixels",
        ),
        (
            "too_large_to_process",
            "this image needs about 1200 MB to process, more than the "
            "service's memory budget of 1024 MB",
        ),
    ),
    415: _errors(
        415,
        "Not an image upload: send an image/* body or multipart/form-data with a file",
        (
            "unsupported_media_type",
            "send an image (image/jpeg, image/png, …) or multipart/form-data, not text/plain",
        ),
    ),
    422: _errors(
        422,
        "The upload is not an image that can be read (corrupt, truncated, empty, another "
        "format), or a multipart upload without a file",
        ("bad_image", "corrupt, truncated or unreadable image: image file is truncated"),
        ("bad_image", "not a supported image (supported: JPEG, PNG, WEBP, BMP, TIFF, GIF)"),
        ("no_file", "multipart upload without a file part named 'file'"),
    ),
    500: _errors(
        500,
        "The model or the service failed on this request; the traceback is in the log",
        ("inference_failed", "the model failed on this request"),
        ("internal_error", "the service failed on this request"),
    ),
    503: _errors(
        503,
        "Busy or not ready; retry after Retry-After seconds",
        ("busy", "too many requests in the queue; retry shortly"),
        ("loading", "the model is loading"),
        ("model_failed", "the model failed to load: …"),
    ),
    504: _errors(
        504,
        "No result within request_timeout_s",
        ("timeout", "no result within 30 s"),
    ),
}
SEGMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            **{t: {"schema": {"type": "string", "format": "binary"}} for t in RAW_IMAGE_TYPES},
        },
    }
}
