"""Image/video inputs → the string the API accepts (an http(s) URL or a ``data:`` URI).

Everything here runs before any HTTP call, so a bad input costs no credit. Accepted inputs:

* an ``http://`` / ``https://`` URL: passed through unchanged (the API fetches it);
* a ``data:`` URI or bare base64: decoded, sniffed and size-checked;
* a local path (``str``/``Path``, or ``file://`` URI): must be a regular file (a device, FIFO or socket is
  refused without being opened for a blocking read); at most ``limit + 1`` bytes are read;
* any ``ObjectStoragePath``/fsspec URI (``s3://…``): opened and read up to ``limit + 1`` bytes, within
  ``read_timeout`` seconds (:data:`DEFAULT_READ_TIMEOUT`);
* ``bytes``.

Non-URL inputs are sent as a ``data:<mime>;base64,…`` URI.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from airflow_provider_magicvideo.exceptions import InvalidMediaError, MediaError, MediaTooLargeError
from airflow_provider_magicvideo.media_formats import FORMAT_NAMES, structure_problem

MediaKind = Literal["image", "video"]
_ARTICLE = {"image": "an image", "video": "a video"}

#: Default size limits. The API takes the media inline in a JSON body, so keep it modest; raise it
#: per connection with the ``max_media_bytes`` extra or per hook with ``max_media_bytes=``.
DEFAULT_MAX_BYTES: dict[str, int] = {"image": 10 * 1024 * 1024, "video": 50 * 1024 * 1024}

#: Seconds a read from object storage (``s3://…``, any non-local ``ObjectStoragePath``) may take.
DEFAULT_READ_TIMEOUT = 60.0

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


def _check_bytes(data: bytes, kind: MediaKind, field: str, limit: int, source: str) -> str:
    if not data:
        raise MediaError(f"{field}: {source} is empty. Pass a non-empty {kind}.")
    if len(data) > limit:  # a read stops at limit + 1 bytes: say "more than" when the total is unknown
        raise _too_large(field, source, f"{len(data):,} bytes", limit, kind)
    mime = sniff_mime(data)
    if mime not in ACCEPTED_TYPES[kind]:
        found = mime or "in an unrecognised format"  # never the bytes themselves: they may be a secret
        raise MediaError(
            f"{field}: {source} is {found}; the API accepts {', '.join(ACCEPTED_TYPES[kind])}. "
            f"Convert the {kind} first."
        )
    problem = structure_problem(data, mime)
    if problem:
        raise InvalidMediaError(f"{field}: {source} is not a usable {FORMAT_NAMES[mime]}: {problem}. Re-export the "
                                f"{kind}: sent as it is, it would pay for a generation that fails.")
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


#: Messages echo at most this many characters of a user-supplied value (then an ellipsis and the length).
MAX_ECHO = 200


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}… ({len(text):,} characters)"


def _quote(value: object) -> str:
    text = str(value)
    return repr(text) if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]!r}… ({len(text):,} characters)"


def _too_large(field: str, source: str, size: str, limit: int, kind: MediaKind) -> MediaTooLargeError:
    return MediaTooLargeError(
        f"{field}: {source} is {size}, over the {limit:,}-byte limit. Pass a smaller {kind}, "
        "host it and pass its https URL, or raise the limit with the connection extra 'max_media_bytes'."
    )


def _read_at_most(handle: Any, n: int, chunk: int | None = None) -> bytes:
    """Read until ``n`` bytes or end of file, never more (``chunk`` bounds each read call)."""
    parts: list[bytes] = []
    remaining = n
    while remaining > 0:
        part = handle.read(remaining if chunk is None else min(remaining, chunk))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


_SPECIAL_FILES = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                  (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))
#: O_NONBLOCK: should the path become a FIFO between the stat and the open, the open must not block.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def _refuse_special(mode: int, shown: str, field: str, kind: MediaKind) -> None:
    if stat.S_ISDIR(mode):
        raise MediaError(f"{field}: {shown} is a directory, not a file.")
    if not stat.S_ISREG(mode):
        what = next((name for test, name in _SPECIAL_FILES if test(mode)), "a special file")
        raise MediaError(f"{field}: {shown} is {what}, not a regular file. "
                         f"Pass a regular {kind} file, a URL, base64 or bytes.")


def _read_local(path: str, field: str, kind: MediaKind, limit: int) -> bytes:
    """Read a local regular file: never a device, FIFO or socket, never more than ``limit + 1`` bytes."""
    shown = _quote(path)
    try:
        info = os.stat(path)  # a stat never opens, so a FIFO is refused without blocking
        _refuse_special(info.st_mode, shown, field, kind)
        if info.st_size > limit:
            raise _too_large(field, f"file {shown}", f"{info.st_size:,} bytes", limit, kind)
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        raise MediaError(f"{field}: file {shown} does not exist.") from None
    except OSError as exc:
        raise MediaError(f"{field}: cannot read {shown}: {_describe(exc)}") from None
    with open(fd, "rb", buffering=0) as handle:
        _refuse_special(os.fstat(fd).st_mode, shown, field, kind)  # swapped after the stat
        try:
            return _read_at_most(handle, limit + 1, chunk=1 << 20)
        except OSError as exc:
            raise MediaError(f"{field}: cannot read {shown}: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    """``Type: message`` of a read failure, clipped (backends often repeat the whole path or URI)."""
    return f"{type(exc).__name__}: {_clip(str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc))}"


def _call_with_timeout(function: Callable[[], Any], timeout: float) -> Any:
    """Run ``function`` in a daemon thread; raise :class:`TimeoutError` if it has not returned in ``timeout`` s.

    A blocked network read cannot be interrupted from outside, so on timeout the thread is abandoned: it is a
    daemon (it never delays the worker's exit) and it holds at most ``limit + 1`` bytes.
    """
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc
        finally:
            finished.set()

    threading.Thread(target=run, name="magicvideo-media-read", daemon=True).start()
    if not finished.wait(timeout):
        raise TimeoutError
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _read_remote(target: Any, field: str, kind: MediaKind, limit: int, timeout: float) -> bytes:
    """Read an ObjectStoragePath/fsspec object: opened and read up to ``limit + 1`` bytes, under a timeout."""
    shown = _quote(target)

    def read() -> tuple[bytes, int | None]:
        if not hasattr(target, "open"):  # a duck-typed path with only read_bytes(): cannot be bounded
            return target.read_bytes(), None
        with target.open("rb") as handle:
            size = getattr(handle, "size", None)
            return _read_at_most(handle, limit + 1), size if isinstance(size, int) else None

    try:
        data, size = _call_with_timeout(read, timeout)
    except TimeoutError:
        raise MediaError(f"{field}: reading {shown} did not finish within {timeout:g} s; check the storage "
                         "connection, or copy the file somewhere faster and pass that.") from None
    except FileNotFoundError:
        raise MediaError(f"{field}: file {shown} does not exist.") from None
    except IsADirectoryError:
        raise MediaError(f"{field}: {shown} is a directory, not a file.") from None
    except Exception as exc:  # fsspec backends raise many kinds; name the cause, keep it one error
        raise MediaError(f"{field}: cannot read {shown}: {_describe(exc)}") from None
    if len(data) > limit:
        total = f"{size:,} bytes" if size is not None and size > limit else (
            f"{len(data):,} bytes" if not hasattr(target, "open") else f"more than {limit:,} bytes")
        raise _too_large(field, f"object {shown}", total, limit, kind)
    return data


def _object_storage_path(uri: str) -> Any:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    return ObjectStoragePath(uri)


def _read(value: Any, field: str, kind: MediaKind, limit: int, timeout: float) -> tuple[bytes, str]:
    """Read a path-like input (local or object storage); return its bytes and how to name it in messages."""
    if isinstance(value, str):  # a non-file URI: build the ObjectStoragePath here, so a bad scheme is our error
        try:
            value = _object_storage_path(value)  # in this thread: a conn_id in the URI is looked up here
        except Exception as exc:
            raise MediaError(f"{field}: cannot read {_quote(value)}: {_describe(exc)}") from None
    if isinstance(value, PurePath):
        return _read_local(str(value), field, kind, limit), f"file {_quote(value)}"
    local = getattr(value, "protocol", None) in ("file", "local") and isinstance(getattr(value, "path", None), str)
    if local:
        return _read_local(value.path, field, kind, limit), f"file {_quote(value.path)}"
    if hasattr(value, "open") or hasattr(value, "read_bytes"):
        return _read_remote(value, field, kind, limit, timeout), f"object {_quote(value)}"
    return _read_local(os.fsdecode(os.fspath(value)), field, kind, limit), f"file {_quote(value)}"


def prepare_media(
    value: Any,
    *,
    kind: MediaKind = "image",
    field: str | None = None,
    max_bytes: int | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
) -> str:
    """Validate ``value`` and return what goes into the request body's ``image_url``/``video_url``.

    ``max_bytes`` defaults to :data:`DEFAULT_MAX_BYTES` for ``kind``; ``read_timeout`` bounds a read from
    object storage (local files are regular files read up to the limit, without a timeout).
    """
    field = field or ("image" if kind == "image" else "video")
    if isinstance(read_timeout, bool) or not isinstance(read_timeout, (int, float)) or not (
        math.isfinite(read_timeout) and read_timeout > 0
    ):
        raise MediaError(f"read_timeout: must be a finite number of seconds > 0, got {_clip(repr(read_timeout))}.")
    limit = DEFAULT_MAX_BYTES[kind] if max_bytes is None else max_bytes
    if value is None:
        raise MediaError(f"{field}: no {kind} given. Pass a URL, a local path, base64 or bytes.")
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return _to_data_uri(data, _check_bytes(data, kind, field, limit, "the given bytes"))
    if isinstance(value, os.PathLike) or hasattr(value, "read_bytes") or hasattr(value, "open"):
        data, source = _read(value, field, kind, limit, read_timeout)
        return _to_data_uri(data, _check_bytes(data, kind, field, limit, source))
    if not isinstance(value, str):
        raise MediaError(
            f"{field}: got a {type(value).__name__}; pass a URL, a local path, a data URI, base64 or bytes."
        )

    text = value.strip()
    if not text:
        raise MediaError(f"{field}: the {kind} is an empty string. Pass a URL, a path, base64 or bytes; if it comes "
                         "from a template, the upstream XCom or param is probably missing or empty.")
    if text.lower() in ("none", "null"):  # str(None) from Jinja; as base64 it would "decode" to 3 bytes
        raise MediaError(
            f"{field}: the {kind} rendered to {text!r}, not {_ARTICLE[kind]}: the value was None when the template "
            "was rendered. If it comes from a template such as \"{{ ti.xcom_pull(...) }}\" or a param, the upstream "
            "XCom or param is probably missing."
        )
    lowered = text[:16].lower()
    if lowered.startswith(("http://", "https://")):
        parts = urlsplit(text)
        if not parts.netloc or any(c.isspace() for c in text):
            raise MediaError(f"{field}: {_quote(text)} is not a valid URL.")
        return text
    if lowered.startswith("data:"):
        match = _DATA_URI.match(text)
        if not match or not match.group("b64"):
            raise MediaError(f"{field}: a data URI must look like 'data:<mime>;base64,<data>'.")
        data = _b64decode(text[match.end():], field, "the data URI")
        return _to_data_uri(data, _check_bytes(data, kind, field, limit, "the data URI"))

    scheme = urlsplit(text).scheme if "://" in text[:32] else ""
    target: Any = text
    if scheme == "file":
        target = Path(unquote(urlsplit(text).path))
    elif not scheme:
        # A short string with a path shape is a path; anything else must be bare base64. JPEG base64 starts
        # with "/9j/", which looks like a path: a missing "path" that decodes to known media is base64.
        if len(text) < 4096 and (
            os.path.exists(os.path.expanduser(text)) or (_PATH_HINT.search(text) and not _is_base64_media(text))
        ):
            target = Path(os.path.expanduser(text))
        else:
            try:
                data = _b64decode(text, field, "the string")
            except MediaError:
                raise MediaError(
                    f"{field}: {_quote(text)} is not an http(s) URL, an existing file, a data URI or valid base64."
                ) from None
            return _to_data_uri(data, _check_bytes(data, kind, field, limit, "the base64 string"))
    data, source = _read(target, field, kind, limit, read_timeout)
    return _to_data_uri(data, _check_bytes(data, kind, field, limit, source))
