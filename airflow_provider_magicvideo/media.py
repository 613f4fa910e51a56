"""Image/video inputs → the string the API accepts (an http(s) URL or a ``data:`` URI).

Everything here runs before any HTTP call, so a bad input costs no credit. Accepted inputs:

* an ``http://`` / ``https://`` URL: passed through unchanged (the API fetches it);
* a ``data:`` URI or bare base64: decoded, sniffed and size-checked;
* a local path (``str``/``Path``, or ``file://`` URI) or any ``ObjectStoragePath``/fsspec URI
  (``s3://…``): read, sniffed, size-checked;
* ``bytes``.

Non-URL inputs are sent as a ``data:<mime>;base64,…`` URI.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from airflow_provider_magicvideo.exceptions import MediaError, MediaTooLargeError

MediaKind = Literal["image", "video"]

#: Default size limits. The API takes the media inline in a JSON body, so keep it modest; raise it
#: per connection with the ``max_media_bytes`` extra or per hook with ``max_media_bytes=``.
DEFAULT_MAX_BYTES: dict[str, int] = {"image": 10 * 1024 * 1024, "video": 50 * 1024 * 1024}

ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "image": ("image/jpeg", "image/png", "image/webp"),
    "video": ("video/mp4",),
}

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,",
                       re.IGNORECASE)
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/=_\-\s]+$")
_PATH_HINT = re.compile(r"(^[~./\\])|(\.(jpe?g|png|webp|gif|bmp|mp4|mov|webm)$)", re.IGNORECASE)


def sniff_mime(data: bytes) -> str | None:
    """Name the format of ``data`` from its magic bytes (``None`` when unknown)."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"qt  ",):
            return "video/quicktime"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        if brand in (b"avif", b"avis"):
            return "image/avif"
        return "video/mp4"
    for magic, mime in (
        (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"BM", "image/bmp"), (b"%PDF", "application/pdf"),
        (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"), (b"\x1aE\xdf\xa3", "video/webm"),
        (b"PK\x03\x04", "application/zip"),
    ):
        if head.startswith(magic):
            return mime
    stripped = head.lstrip()
    if stripped[:1] in (b"<", b"{", b"["):
        return "text (HTML/XML/JSON)"
    return None


def _check_bytes(data: bytes, kind: MediaKind, field: str, max_bytes: int | None, source: str) -> str:
    if not data:
        raise MediaError(f"{field}: {source} is empty. Pass a non-empty {kind}.")
    limit = DEFAULT_MAX_BYTES[kind] if max_bytes is None else max_bytes
    if len(data) > limit:
        raise MediaTooLargeError(
            f"{field}: {source} is {len(data):,} bytes, over the {limit:,}-byte limit. Pass a smaller {kind}, "
            "host it and pass its https URL, or raise the limit with the connection extra 'max_media_bytes'."
        )
    mime = sniff_mime(data)
    if mime not in ACCEPTED_TYPES[kind]:
        found = mime or f"unrecognised bytes (starting {data[:8].hex(' ')})"
        raise MediaError(
            f"{field}: {source} is {found}; the API accepts {', '.join(ACCEPTED_TYPES[kind])}. "
            f"Convert the {kind} first."
        )
    return mime


def _b64decode(text: str, field: str, source: str) -> bytes:
    compact = "".join(text.split())
    if not compact or not _BASE64_CHARS.match(compact):
        raise MediaError(f"{field}: {source} contains characters that are not base64.")
    altchars = b"-_" if ("-" in compact or "_" in compact) else None
    padded = compact + "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaError(f"{field}: {source} is not valid base64 ({exc}).") from None


def _is_base64_media(text: str) -> bool:
    try:
        return sniff_mime(_b64decode(text, "", "")) is not None
    except MediaError:
        return False


def _to_data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _read_path(path: Any, field: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MediaError(f"{field}: file {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise MediaError(f"{field}: {str(path)!r} is a directory, not a file.") from None
    except Exception as exc:  # fsspec backends raise many kinds; name the cause, keep it one error
        raise MediaError(f"{field}: cannot read {str(path)!r}: {type(exc).__name__}: {exc}") from None


def _object_storage_path(uri: str) -> Any:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    return ObjectStoragePath(uri)


def prepare_media(
    value: Any,
    *,
    kind: MediaKind = "image",
    field: str | None = None,
    max_bytes: int | None = None,
) -> str:
    """Validate ``value`` and return what goes into the request body's ``image_url``/``video_url``."""
    field = field or ("image" if kind == "image" else "video")
    if value is None:
        raise MediaError(f"{field}: no {kind} given. Pass a URL, a local path, base64 or bytes.")
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return _to_data_uri(data, _check_bytes(data, kind, field, max_bytes, "the given bytes"))
    if isinstance(value, os.PathLike) or hasattr(value, "read_bytes"):
        data = _read_path(value if hasattr(value, "read_bytes") else Path(value), field)
        return _to_data_uri(data, _check_bytes(data, kind, field, max_bytes, f"file {str(value)!r}"))
    if not isinstance(value, str):
        raise MediaError(
            f"{field}: got a {type(value).__name__}; pass a URL, a local path, a data URI, base64 or bytes."
        )

    text = value.strip()
    if not text:
        raise MediaError(f"{field}: the {kind} is an empty string. Pass a URL, a path, base64 or bytes.")
    lowered = text[:16].lower()
    if lowered.startswith(("http://", "https://")):
        parts = urlsplit(text)
        if not parts.netloc or any(c.isspace() for c in text):
            raise MediaError(f"{field}: {text[:120]!r} is not a valid URL.")
        return text
    if lowered.startswith("data:"):
        match = _DATA_URI.match(text)
        if not match or not match.group("b64"):
            raise MediaError(f"{field}: a data URI must look like 'data:<mime>;base64,<data>'.")
        data = _b64decode(text[match.end():], field, "the data URI")
        return _to_data_uri(data, _check_bytes(data, kind, field, max_bytes, "the data URI"))

    scheme = urlsplit(text).scheme if "://" in text[:32] else ""
    if scheme == "file":
        path: Any = Path(unquote(urlsplit(text).path))
        data = _read_path(path, field)
        return _to_data_uri(data, _check_bytes(data, kind, field, max_bytes, f"file {text!r}"))
    if scheme:
        data = _read_path(_object_storage_path(text), field)
        return _to_data_uri(data, _check_bytes(data, kind, field, max_bytes, f"object {text!r}"))

    # A short string with a path shape is a path; anything else must be bare base64. JPEG base64 starts
    # with "/9j/", which looks like a path: a missing "path" that decodes to known media is base64.
    if len(text) < 4096 and (
        os.path.exists(os.path.expanduser(text)) or (_PATH_HINT.search(text) and not _is_base64_media(text))
    ):
        path = Path(os.path.expanduser(text))
        data = _read_path(path, field)
        return _to_data_uri(data, _check_bytes(data, kind, field, max_bytes, f"file {text!r}"))
    try:
        data = _b64decode(text, field, "the string")
    except MediaError:
        raise MediaError(
            f"{field}: {text[:60]!r} is not an http(s) URL, an existing file, a data URI or valid base64."
        ) from None
    return _to_data_uri(data, _check_bytes(data, kind, field, max_bytes, "the base64 string"))
