"""OpenAPI documentation of /v1/segment: its request bodies and responses, with examples."""

from __future__ import annotations

from genadapt.serve.errors import ERROR_EXAMPLE

SEGMENT_RESPONSES = {
    200: {
        "description": "The label map: uint8 train ids (png, npy), colours, an overlay, or JSON.",
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
    **{
        status: {"description": desc, "content": {"application/json": {"example": ERROR_EXAMPLE}}}
        for status, desc in [
            (401, "missing or wrong API key"),
            (413, "body or image too large"),
            (415, "not an image upload"),
            (422, "undecodable image"),
            (503, "queue full (Retry-After) or model not ready"),
            (504, "timed out"),
        ]
    },
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
            **{
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff")
            },
        },
    }
}
