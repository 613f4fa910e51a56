"""Structural checks of the formats the API accepts: bytes that carry a PNG/JPEG/WebP/MP4 signature but
would not decode (truncated, corrupted) are refused before they pay for a generation that fails.

Only the container structure is walked (no pixel decoding, no dependencies): enough to catch a cut
download, a file that is only a header, a zero-sized image or a broken chunk. Each check returns a
description of the first problem found, or ``None``; messages never quote the file's bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

#: The largest width/height accepted for PNG and JPEG (JPEG's own maximum); WebP's format maximum is 16,383.
MAX_DIMENSION = 65_535
_WEBP_MAX_DIMENSION = 16_383

FORMAT_NAMES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP", "video/mp4": "MP4"}

_TRUNCATED = "(truncated?)"


def _dimensions(where: str, width: int, height: int, limit: int = MAX_DIMENSION) -> str | None:
    if not width or not height:
        return f"its {where} gives a zero dimension ({width:,}x{height:,})"
    if width > limit or height > limit:
        return f"its {where} gives implausible dimensions ({width:,}x{height:,}; at most {limit:,})"
    return None


# --------------------------------------------------------------------------- PNG
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def png_problem(data: bytes) -> str | None:
    """IHDR first (13 bytes, plausible size, valid depth/colour type), an IDAT, and an IEND; critical CRCs."""
    pos, seen_idat = 8, False
    while True:
        expected = "IHDR" if pos == 8 else "IEND"
        if pos + 8 > len(data):
            return f"it ends before its {expected} chunk {_TRUNCATED}"
        length, kind = struct.unpack_from(">I4s", data, pos)
        if not kind.isalpha() or length > 0x7FFF_FFFF:
            return "it has a chunk with an invalid type or length (corrupted)"
        name = kind.decode("ascii")
        end = pos + 12 + length
        if end > len(data):
            return f"it is cut inside its {name} chunk {_TRUNCATED}"
        if pos == 8:
            if kind != b"IHDR" or length != 13:
                return "its first chunk is not IHDR"
            width, height, depth, colour = struct.unpack_from(">IIBB", data, pos + 8)
            problem = _dimensions("IHDR", width, height)
            if problem:
                return problem
            if depth not in _PNG_DEPTHS.get(colour, ()):
                return f"its IHDR gives an invalid bit depth/colour type ({depth}/{colour})"
        critical = not kind[0] & 0x20  # decoders reject a bad CRC in a critical chunk, not in an ancillary one
        if critical and zlib.crc32(data[pos + 4:end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            return f"its {name} chunk fails its CRC check (corrupted)"
        if kind == b"IDAT":
            seen_idat = True
        elif kind == b"IEND":
            return None if seen_idat else "it has no IDAT (image data) chunk"
        pos = end


# --------------------------------------------------------------------------- JPEG
_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
_JPEG_NAMES = {0xC4: "DHT", 0xCC: "DAC", 0xDA: "SOS", 0xDB: "DQT", 0xDD: "DRI", 0xFE: "COM"}


def _jpeg_name(marker: int) -> str:
    if marker in _SOF_MARKERS:
        return "SOF"
    if 0xE0 <= marker <= 0xEF:
        return f"APP{marker - 0xE0}"
    return _JPEG_NAMES.get(marker, "marker")


def jpeg_problem(data: bytes) -> str | None:
    """SOI, a SOF frame header with non-zero dimensions before the first scan, scans, and an EOI marker."""
    size, pos, frame, scanned = len(data), 2, False, False
    while True:
        if pos >= size or data[pos] != 0xFF:
            if pos >= size:
                return f"it ends before its image data {_TRUNCATED}" if not scanned else (
                    f"it ends without an EOI marker {_TRUNCATED}")
            return "it has bytes out of place between its segments (corrupted)"
        while pos + 1 < size and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        pos += 1
        if pos >= size:
            continue  # reported as truncated above
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            if not frame:
                return "it has no SOF frame header"
            return None if scanned else "it has no image data (SOS)"
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            continue
        if marker in (0x00, 0xD8):
            return "it has a marker out of place (corrupted)"
        name = _jpeg_name(marker)
        if pos + 2 > size:
            return f"it is cut inside a {name} segment {_TRUNCATED}"
        length = int.from_bytes(data[pos:pos + 2], "big")
        if length < 2 or pos + length > size:
            return f"it is cut inside a {name} segment {_TRUNCATED}" if length >= 2 else (
                f"it has a {name} segment with an impossible length (corrupted)")
        if marker in _SOF_MARKERS:
            if length < 8:
                return "its SOF frame header is too short (corrupted)"
            height, width = struct.unpack_from(">HH", data, pos + 3)
            problem = _dimensions("SOF frame header", width, height)
            if problem:
                return problem
            frame = True
        pos += length
        if marker == 0xDA:  # a scan: entropy-coded data up to the next marker that is not a restart
            if not frame:
                return "its image data (SOS) comes before any SOF frame header"
            scanned = True
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= size:
                    return f"it ends inside its image data, without an EOI marker {_TRUNCATED}"
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed byte, restart marker
                    pos += 2
                elif following == 0xFF:
                    pos += 1
                else:
                    break


# --------------------------------------------------------------------------- WebP
def webp_problem(data: bytes) -> str | None:
    """The RIFF length fits the data, chunks fit the RIFF, the first is VP8/VP8L/VP8X, image data is present.

    Bytes after the RIFF's announced end are ignored, as libwebp does.
    """
    declared = int.from_bytes(data[4:8], "little") + 8
    if declared > len(data):
        return f"its RIFF header announces {declared:,} bytes but there are {len(data):,} {_TRUNCATED}"
    pos, image = 12, False
    while pos < declared:
        if pos + 8 > declared:
            return f"it ends inside a chunk header {_TRUNCATED}"
        fourcc, length = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        known = {b"VP8 ": "VP8", b"VP8L": "VP8L", b"VP8X": "VP8X", b"ANMF": "ANMF"}.get(fourcc)
        body = pos + 8
        if body + length > declared:
            return f"its {known or 'next'} chunk runs past the end of the RIFF data {_TRUNCATED}"
        if pos == 12 and fourcc not in (b"VP8 ", b"VP8L", b"VP8X"):
            return "its first chunk is not VP8, VP8L or VP8X"
        chunk = data[body:body + length]
        problem: str | None = None
        if fourcc == b"VP8 ":
            if length < 10 or chunk[3:6] != b"\x9d\x01\x2a":
                return "its VP8 chunk is not a VP8 key frame"
            width, height = (int.from_bytes(chunk[i:i + 2], "little") & 0x3FFF for i in (6, 8))
            problem, image = _dimensions("VP8 frame", width, height, _WEBP_MAX_DIMENSION), True
        elif fourcc == b"VP8L":
            if length < 5 or chunk[0] != 0x2F:
                return "its VP8L chunk has no lossless signature"
            image = True
        elif fourcc == b"VP8X":
            if length < 10:
                return "its VP8X chunk is too short (corrupted)"
            width, height = (int.from_bytes(chunk[i:i + 3], "little") + 1 for i in (4, 7))
            problem = _dimensions("VP8X canvas", width, height, _WEBP_MAX_DIMENSION)
        elif fourcc == b"ANMF":
            image = True
        if problem:
            return problem
        pos = body + length + (length & 1)
    return None if image else "it has no image data (VP8/VP8L) chunk"


# --------------------------------------------------------------------------- MP4
def mp4_problem(data: bytes) -> str | None:
    """Top-level boxes tile the file (64-bit sizes, size 0 = to the end), the first is ``ftyp``, a ``moov`` exists."""
    pos, size, kinds = 0, len(data), set()
    while pos < size:
        if pos + 8 > size:
            return f"it ends inside a box header {_TRUNCATED}"
        length, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if length == 1:
            if pos + 16 > size:
                return f"it ends inside a box header {_TRUNCATED}"
            length, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif length == 0:
            length = size - pos
        if length < header:
            return "it has a box with an impossible size (corrupted)"
        if not all(0x20 <= c < 0x7F for c in kind):
            return "it has a box with an invalid type (corrupted)"
        if pos + length > size:
            return f"its {kind.decode('ascii')!r} box runs past the end of the file {_TRUNCATED}"
        if pos == 0 and kind != b"ftyp":
            return "its first box is not 'ftyp'"
        kinds.add(kind)
        pos += length
    return None if b"moov" in kinds else "it has no 'moov' box (the movie header)"


_CHECKS: dict[str, Callable[[bytes], str | None]] = {
    "image/png": png_problem, "image/jpeg": jpeg_problem, "image/webp": webp_problem, "video/mp4": mp4_problem,
}


def structure_problem(data: bytes, mime: str) -> str | None:
    """What is structurally wrong with ``data`` (already sniffed as ``mime``), or ``None`` when it looks sound."""
    check = _CHECKS.get(mime)
    return check(data) if check else None
