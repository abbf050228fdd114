"""Hand-built TIFF files: every tag of a minimal strip image, in any TIFF field type, in
classic or BigTIFF layout, one page or several (for the decoder's fuzz tests)."""

from __future__ import annotations

import struct

# TIFF field types and their struct codes: LONG8, SLONG8 and IFD8 are BigTIFF's 64-bit types.
FIELD_TYPES = {1: "B", 2: "B", 3: "H", 4: "I", 5: "II", 6: "b", 7: "B", 8: "h", 9: "i",
               10: "ii", 11: "f", 12: "d", 13: "I", 16: "Q", 17: "q", 18: "Q"}  # fmt: skip
# A 4×4 8-bit grey image in one strip: (tag, type, value); StripOffsets is filled in.
MINIMAL = [(256, 3, 4), (257, 3, 4), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 0),
           (277, 3, 1), (278, 3, 4), (279, 4, 16)]  # fmt: skip
STRIP_OFFSETS = 273


def field_bytes(kind: int, value: int) -> bytes:
    code = FIELD_TYPES[kind]
    if code in ("II", "ii"):  # RATIONAL and SRATIONAL: numerator, denominator
        return struct.pack("<" + code, value % 2 ** (31 if code == "ii" else 32), 1)
    if code in ("f", "d"):
        return struct.pack("<" + code, float(value))
    bits = {"B": 8, "H": 16, "I": 32, "Q": 64, "b": 7, "h": 15, "i": 31, "q": 63}[code]
    return struct.pack("<" + code, value % 2**bits)


def build_tiff(override: dict[int, tuple[int, int]] | None = None, bigtiff: bool = False,
               pages: int = 1) -> bytes:  # fmt: skip
    """`pages` copies of the minimal image; `override` maps a tag to (field type, value)."""
    override = override or {}
    entry, count, offset = ("<HHQ", "<Q", "<Q") if bigtiff else ("<HHI", "<H", "<I")
    slot = 8 if bigtiff else 4  # bytes of a value stored inside its entry
    header = (
        b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) if bigtiff else b"II*\x00" + struct.pack("<I", 8)
    )
    ifd_size = struct.calcsize(count) + len(MINIMAL) * struct.calcsize(entry) + slot
    page_size = ifd_size + 64 + 16  # the IFD, its out-of-line values, the pixels
    out = header
    for page in range(pages):
        start = len(out)
        values_at = start + ifd_size
        pixels_at = values_at + 64
        entries, extra = [], b""
        for tag, kind, value in MINIMAL:
            value = pixels_at if tag == STRIP_OFFSETS else value
            kind, value = override.get(tag, (kind, value))
            data = field_bytes(kind, value)
            if len(data) <= slot:
                field = data.ljust(slot, b"\0")
            else:
                field = struct.pack(offset, values_at + len(extra))
                extra += data
            entries.append(struct.pack(entry, tag, kind, 1) + field)
        following = start + page_size if page + 1 < pages else 0
        ifd = struct.pack(count, len(MINIMAL)) + b"".join(entries) + struct.pack(offset, following)
        out += ifd + extra.ljust(64, b"\0") + bytes(range(16))
    return out
