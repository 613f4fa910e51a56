"""Stream a finished render's MP4 into any :class:`ObjectStoragePath` destination.

:func:`deliver_generation` is the whole public surface. It

* asks the API for a fresh presigned URL (``hook.get_generation``) right before every download attempt;
* streams the body in ``chunk_size`` pieces into a temporary object next to the destination
  (``<name>.part-<random>``), hashing on the fly, so memory stays constant whatever the size;
* checks the MP4 signature (``ftyp`` at bytes 4..8) before writing, and the byte count against
  ``Content-Length``/``Content-Range``;
* resumes with ``Range`` from the bytes already written after an expired URL or a dropped stream
  (restarting from byte 0 when the server ignores the range), for at most ``max_attempts`` downloads;
* compares with an existing destination (``overwrite="if_different"``) and only then moves the temporary
  object onto the final name, so a failure never leaves a partial file under the final name.

All HTTP goes through :class:`~airflow_provider_magicvideo.hooks.magicvideo.MagicVideoHook`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, get_args

import requests
import urllib3
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_magicvideo.exceptions import (  # the delivery errors are re-exported from here
    ApiError,
    DeliveryError,
    DeliveryIntegrityError,
    DestinationError,
    InvalidInputError,
    PermanentDeliveryError,
    RateLimitError,
    RenderNotCompletedError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    VideoUrlExpiredError,
)
from airflow_provider_magicvideo.generation import GenerationStatus

if TYPE_CHECKING:
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 1 << 20
CONTENT_TYPE = "video/mp4"
#: Write buffer / read-ahead for remote stores (s3fs defaults to 50 MiB; S3 parts must be >= 5 MiB).
REMOTE_BLOCK_SIZE = 8 << 20
LOCAL_PROTOCOLS = ("", "file", "local")
#: Stores whose uploads become visible only on commit (S3 multipart): written in place, committed last.
DEFERRED_COMMIT_PROTOCOLS = ("s3", "s3a", "s3n")

Overwrite = Literal["if_different", "always", "never"]
OVERWRITE_MODES: tuple[str, ...] = get_args(Overwrite)

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_SIGNED_QUERY = re.compile(r"\?[^\s'\"<>]*(?:Signature|X-Amz-|Expires=)[^\s'\"<>]*", re.IGNORECASE)

_sleep = time.sleep  # tests replace this to skip the back-off


# ============================================================================================= results
@dataclass(frozen=True, kw_only=True)
class DeliveryResult:
    """What was delivered. ``skipped`` means the destination already held these bytes (nothing written)."""

    uri: str
    size: int
    sha256: str
    content_type: str = CONTENT_TYPE
    generation_id: str
    skipped: bool = False
    attempts: int = 0

    def as_xcom(self) -> dict[str, Any]:
        """The JSON-able summary operators push to XCom and attach to asset events."""
        return {
            "uri": self.uri,
            "size": self.size,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "generation_id": self.generation_id,
            "skipped": self.skipped,
        }


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying the delivery (e.g. an Airflow task retry) cannot help."""
    return bool(getattr(exc, "permanent", False)) or isinstance(exc, InvalidInputError)


class _ShortRead(Exception):
    """The stream ended before the announced length: resumable."""


class _RangeMismatch(Exception):
    """A 206 answer that does not start where we asked: restart from byte 0."""


#: Failures after which a fresh URL and a resumed download may succeed.
_RESUMABLE: tuple[type[BaseException], ...] = (
    VideoUrlExpiredError,
    TransportError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
    _ShortRead,
    _RangeMismatch,
)


def redact(text: str) -> str:
    """Drop presigned query strings (signatures) from a URL or a message that may contain one."""
    return _SIGNED_QUERY.sub("?<redacted>", text)


def url_path(url: str) -> str:
    """``scheme://host/path`` of a URL, without its query string: safe to log."""
    return url.split("?", 1)[0]


# ========================================================================================= destinations
def as_destination(destination: str | os.PathLike[str] | ObjectStoragePath, conn_id: str | None = None
                   ) -> ObjectStoragePath:
    """Turn a URI, a local path or an :class:`ObjectStoragePath` into an ObjectStoragePath for a file.

    Plain local paths become absolute ``file://`` paths. ``conn_id`` (e.g. an AWS connection for
    ``s3://``) overrides the one of an ObjectStoragePath. Raises :class:`DestinationError` when the
    destination cannot name a file.
    """
    if isinstance(destination, ObjectStoragePath):
        path = destination if conn_id is None else ObjectStoragePath(str_uri(destination), conn_id=conn_id)
    else:
        text = os.fspath(destination).strip() if isinstance(destination, os.PathLike | str) else None
        if not text:
            raise DestinationError(f"destination: {destination!r} is not a path or URI of a file.")
        if text.endswith(("/", os.sep)):
            raise DestinationError(f"destination: {text!r} names a folder; give the full file name, "
                                   "e.g. .../video.mp4.")
        if "://" not in text:
            text = "file://" + str(Path(text).expanduser().absolute())
        try:
            path = ObjectStoragePath(text, conn_id=conn_id)
        except Exception as exc:
            raise DestinationError(f"destination: {text!r} is not usable: {exc}") from exc
    name = path.name
    if not name or str(path).endswith("/") or name in (".", ".."):
        raise DestinationError(f"destination: {str_uri(path)!r} names a folder; give the full file name, "
                               "e.g. .../video.mp4.")
    if path.protocol not in LOCAL_PROTOCOLS and not getattr(path, "key", name):
        raise DestinationError(f"destination: {str_uri(path)!r} has no object key.")
    return path


def str_uri(path: ObjectStoragePath) -> str:
    """``file:///abs/path`` or ``s3://bucket/key`` (no connection id, unlike ``str(ObjectStoragePath)``)."""
    if path.protocol in LOCAL_PROTOCOLS:
        return "file://" + os.path.abspath(path.path)
    return f"{path.protocol}://{path.path}"


def _is_local(path: ObjectStoragePath) -> bool:
    return path.protocol in LOCAL_PROTOCOLS


def _destination_failure(exc: BaseException, action: str, uri: str) -> DeliveryError:
    """Classify a storage failure: permanent (bad path, no bucket, no permission) or worth a task retry."""
    message = f"Cannot {action} {uri}: {type(exc).__name__}: {redact(str(exc))}"
    permanent = (PermissionError, FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError)
    if isinstance(exc, permanent):
        return DestinationError(message)
    return DeliveryError(message)


def _stat(path: ObjectStoragePath, uri: str) -> int | None:
    """Size of the object at ``path``; ``None`` when absent; DestinationError when it is a folder."""
    fs = path.fs
    try:
        with contextlib.suppress(Exception):
            fs.invalidate_cache(path.path)
        info = fs.info(path.path)
    except FileNotFoundError:
        return None
    except Exception as exc:
        raise _destination_failure(exc, "inspect", uri) from exc
    if info.get("type") == "directory":
        raise DestinationError(f"destination: {uri} is a folder; give the full file name, e.g. .../video.mp4.")
    size = info.get("size")
    return int(size) if size is not None else None


def _hash_object(path: ObjectStoragePath, chunk_size: int, uri: str) -> tuple[int, str]:
    """(size, sha256) of an existing object, streamed."""
    digest = hashlib.sha256()
    size = 0
    kwargs = {} if _is_local(path) else {"block_size": REMOTE_BLOCK_SIZE}
    try:
        with path.fs.open(path.path, "rb", **kwargs) as handle:
            while chunk := handle.read(chunk_size):
                digest.update(chunk)
                size += len(chunk)
    except Exception as exc:
        raise _destination_failure(exc, "read", uri) from exc
    return size, digest.hexdigest()


def _open_for_write(path: ObjectStoragePath, uri: str, *, deferred: bool = False) -> IO[bytes]:
    kwargs: dict[str, Any] = {"autocommit": False} if deferred else {}
    if _is_local(path):
        try:
            Path(path.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _destination_failure(exc, "create the folder of", uri) from exc
    else:
        kwargs["block_size"] = REMOTE_BLOCK_SIZE
        if path.protocol in ("s3", "s3a"):
            kwargs["ContentType"] = CONTENT_TYPE
    try:
        return path.fs.open(path.path, "wb", **kwargs)
    except Exception as exc:
        raise _destination_failure(exc, "write", uri) from exc


def _discard(handle: IO[bytes] | None, *, local: bool) -> None:
    """Abandon a write without committing it (aborts an S3 multipart upload), ignoring errors."""
    if handle is None:
        return
    if not local:
        with contextlib.suppress(Exception):
            handle.discard()  # type: ignore[attr-defined]
            handle.closed = True  # type: ignore[misc]  # fsspec: close() must not upload the rest
    with contextlib.suppress(Exception):
        handle.close()


def _remove(path: ObjectStoragePath) -> None:
    with contextlib.suppress(Exception):
        path.fs.rm_file(path.path) if _is_local(path) else path.fs.rm(path.path)


def _promote(temp: ObjectStoragePath, dest: ObjectStoragePath, uri: str) -> None:
    """Move the finished temporary object onto the final name (atomic rename locally, copy+delete on S3)."""
    try:
        if _is_local(dest):
            os.replace(temp.path, dest.path)
        else:
            dest.fs.mv(temp.path, dest.path)
            with contextlib.suppress(Exception):
                dest.fs.invalidate_cache(dest.path)
    except Exception as exc:
        raise _destination_failure(exc, "move the finished download onto", uri) from exc


# ============================================================================================ download
@dataclass
class _Downloaded:
    """A finished download, not yet visible under the final name: ``promote()`` or ``discard()`` it."""

    temp: ObjectStoragePath
    dest: ObjectStoragePath
    uri: str
    size: int
    sha256: str
    attempts: int
    pending: Any = None  # deferred-commit stores: the closed, uncommitted upload

    def promote(self) -> None:
        if self.pending is None:
            _promote(self.temp, self.dest, self.uri)
            return
        try:
            self.pending.commit()  # S3: CompleteMultipartUpload, atomic
        except Exception as exc:
            raise _destination_failure(exc, "finish writing", self.uri) from exc
        with contextlib.suppress(Exception):
            self.dest.fs.invalidate_cache(self.dest.path)

    def discard(self) -> None:
        if self.pending is None:
            _remove(self.temp)
        else:
            _discard(self.pending, local=False)


class _Download:
    """One resumable download of a render into a temporary object; see :func:`deliver_generation`."""

    def __init__(self, hook: MagicVideoHook, generation_id: str, dest: ObjectStoragePath, uri: str,
                 chunk_size: int, max_attempts: int) -> None:
        self.hook = hook
        self.generation_id = generation_id
        self.uri = uri
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts
        self.dest = dest
        # S3 uploads stay invisible until committed, so they go straight to the final key; elsewhere
        # a temporary object next to the destination is renamed at the end.
        self.deferred = dest.protocol in DEFERRED_COMMIT_PROTOCOLS
        self.temp = dest if self.deferred else dest.parent / f"{dest.name}.part-{secrets.token_hex(6)}"
        self.temp_uri = str_uri(self.temp)
        self.handle: IO[bytes] | None = None
        self.written = 0
        self.hasher = hashlib.sha256()
        self.head = b""  # the first bytes, until the MP4 signature is checked

    # -- writer ---------------------------------------------------------------------------------------
    def _restart(self) -> None:
        """(Re)open an empty temporary object and forget every byte received so far."""
        if self.handle is not None:
            _discard(self.handle, local=_is_local(self.temp))
            self.handle = None
        self.handle = _open_for_write(self.temp, self.uri, deferred=self.deferred)
        self.written = 0
        self.hasher = hashlib.sha256()
        self.head = b""

    def _write(self, data: bytes) -> None:
        assert self.handle is not None
        try:
            self.handle.write(data)
        except Exception as exc:
            raise _destination_failure(exc, "write", self.uri) from exc
        self.hasher.update(data)
        self.written += len(data)

    def _accept(self, chunk: bytes) -> None:
        """Write a chunk; the first 8 bytes are held back until the ``ftyp`` signature is verified."""
        if self.written == 0 and len(self.head) < 8:
            self.head += chunk
            if len(self.head) < 8:
                return
            self._check_signature(self.head)
            chunk, self.head = self.head, self.head[:8]
        self._write(chunk)

    def _check_signature(self, head: bytes) -> None:
        if head[4:8] != b"ftyp":
            raise DeliveryIntegrityError(
                f"Generation {self.generation_id}: the downloaded file is not an MP4 (no 'ftyp' box at byte 4; "
                f"starts with {head[:16]!r}); nothing was written to {self.uri}."
            )

    # -- one attempt ----------------------------------------------------------------------------------
    def _fresh_url(self) -> str:
        generation = self.hook.get_generation(self.generation_id)
        if generation.status is not GenerationStatus.COMPLETED or not generation.video_url:
            detail = None
            if generation.status is GenerationStatus.ERROR:
                detail = f"{generation.error_name or 'error'}: {generation.error_message or 'no message'}"
            raise RenderNotCompletedError(self.generation_id, generation.raw_status, detail)
        return generation.video_url

    def _position(self, resp: requests.Response) -> int | None:
        """Where this answer's body starts (restarting the temp object if needed); the total size if known."""
        asked = self.written
        if resp.status_code == 206:
            match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != asked:
                self._restart()
                raise _RangeMismatch(f"asked for bytes {asked}-, got Content-Range "
                                     f"{resp.headers.get('Content-Range')!r}; restarting from byte 0")
            total = match.group(3)
            return None if total == "*" else int(total)
        if resp.status_code != 200:
            raise _ShortRead(f"unexpected HTTP {resp.status_code} for the video")
        if asked:
            log.warning("Generation %s: the server ignored Range (HTTP 200); restarting from byte 0 instead of %d",
                        self.generation_id, asked)
        if asked or self.handle is None:
            self._restart()
        encoding = resp.headers.get("Content-Encoding", "identity").lower()
        length = resp.headers.get("Content-Length")
        if encoding != "identity" or not (length and length.isdigit()):
            return None
        return int(length)

    def _attempt(self) -> None:
        if self.written == 0:
            self.head = b""  # bytes held back by a previous attempt arrive again
        url = self._fresh_url()
        resp = self.hook.open_video(url, offset=self.written)
        with contextlib.closing(resp):
            total = self._position(resp)
            for chunk in resp.iter_content(self.chunk_size):
                if chunk:
                    self._accept(chunk)
                if total is not None and self.written > total:
                    raise DeliveryIntegrityError(
                        f"Generation {self.generation_id}: received more than the announced {total} bytes "
                        f"from {url_path(url)}."
                    )
        if self.written == 0 and self.head and (total is None or len(self.head) >= total):
            self._check_signature(self.head.ljust(8, b"\0"))  # fewer than 8 bytes in all
        if self.written == 0 and total in (None, 0):
            raise DeliveryIntegrityError(f"Generation {self.generation_id}: the video is empty.")
        if total is not None and self.written < total:
            raise _ShortRead(f"stream ended at byte {self.written} of {total}")

    # -- the loop -------------------------------------------------------------------------------------
    def run(self) -> _Downloaded:
        attempt = 0
        try:
            while True:
                attempt += 1
                try:
                    self._attempt()
                    break
                except _RESUMABLE as exc:
                    cause = f"{type(exc).__name__}: {redact(str(exc))}"
                    if attempt >= self.max_attempts:
                        raise DeliveryError(
                            f"Could not deliver generation {self.generation_id} to {self.uri} after {attempt} "
                            f"attempt(s); last error: {cause}"
                        ) from None
                    delay = min(0.5 * 2 ** (attempt - 2), 4.0) if attempt > 1 else 0.0
                    log.warning("Generation %s: download attempt %d/%d failed (%s); fetching a fresh URL and "
                                "resuming at byte %d%s", self.generation_id, attempt, self.max_attempts, cause,
                                self.written, f" in {delay:.1f}s" if delay else "")
                    _sleep(delay)
                except ApiError as exc:  # 401/403 credits/404/400: a new attempt cannot help
                    raise PermanentDeliveryError(f"Could not deliver generation {self.generation_id} to "
                                                 f"{self.uri}: {redact(str(exc))}") from exc
            assert self.handle is not None
            handle, self.handle = self.handle, None
            try:
                handle.close()  # uploads the last part; commits everywhere but deferred-commit stores
            except Exception as exc:
                _discard(handle, local=_is_local(self.temp))
                raise _destination_failure(exc, "finish writing", self.uri) from exc
        except BaseException:
            _discard(self.handle, local=_is_local(self.temp))
            self.handle = None
            if not self.deferred:  # deferred: the final key was never touched
                _remove(self.temp)
            raise
        return _Downloaded(self.temp, self.dest, self.uri, self.written, self.hasher.hexdigest(), attempt,
                           pending=handle if self.deferred else None)


# ============================================================================================== public
def deliver_generation(
    hook: MagicVideoHook,
    generation_id: str,
    destination: str | os.PathLike[str] | ObjectStoragePath,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_attempts: int = 4,
    overwrite: Overwrite = "if_different",
) -> DeliveryResult:
    """Stream the MP4 of a completed render to ``destination`` and return what was delivered.

    :param hook: the :class:`MagicVideoHook` used for the status GET (fresh URL) and the download.
    :param generation_id: the render's id.
    :param destination: ``file:///…``, ``s3://bucket/key``, a local path or an :class:`ObjectStoragePath`
        (use ``ObjectStoragePath("s3://b/k", conn_id="aws_default")`` to pick the storage connection).
    :param chunk_size: bytes per read/write; memory use is a small multiple of it.
    :param max_attempts: downloads tried (each with a fresh URL, resuming where the last one stopped).
    :param overwrite: ``"if_different"`` replaces an existing object only when its sha256 differs;
        ``"always"`` replaces it; ``"never"`` keeps any existing object without downloading.
    :raises RenderNotCompletedError: the render is not completed (``permanent`` when it failed).
    :raises DestinationError: the destination is unusable.
    :raises DeliveryIntegrityError: the bytes are not an MP4 or longer than announced.
    :raises DeliveryError: every attempt failed; the message names the generation, destination and cause.
    """
    if overwrite not in OVERWRITE_MODES:
        raise ValueError(f"overwrite: {overwrite!r} is not one of {', '.join(OVERWRITE_MODES)}.")
    if chunk_size < 1 or max_attempts < 1:
        raise ValueError("chunk_size and max_attempts must be at least 1.")
    dest = as_destination(destination)
    uri = str_uri(dest)
    log.info("Delivering generation %s to %s", generation_id, uri)
    started = time.monotonic()

    existing = _stat(dest, uri)
    if overwrite == "never" and existing is not None:
        size, digest = _hash_object(dest, chunk_size, uri)
        log.info("Generation %s: %s already exists and overwrite='never'; not downloading (%d bytes, sha256 %s)",
                 generation_id, uri, size, digest)
        return DeliveryResult(uri=uri, size=size, sha256=digest, generation_id=generation_id, skipped=True)

    download = _Download(hook, generation_id, dest, uri, chunk_size, max_attempts).run()
    downloaded = time.monotonic()
    try:
        kept = _already_there(dest, uri, download, overwrite, chunk_size)
        if kept is not None:
            download.discard()
        else:
            download.promote()
    except BaseException:
        download.discard()
        raise
    elapsed = max(time.monotonic() - started, 1e-9)
    size, digest = kept or (download.size, download.sha256)
    result = DeliveryResult(uri=uri, size=size, sha256=digest, generation_id=generation_id,
                            skipped=kept is not None, attempts=download.attempts)
    if kept is not None:
        log.info("Generation %s already delivered to %s (%d bytes, sha256 %s); left it untouched", generation_id,
                 uri, size, digest)
    else:
        mbps = download.size / max(downloaded - started, 1e-9) / 1e6
        log.info("Delivered generation %s to %s: %d bytes, sha256 %s, %.1f MB/s, %d attempt(s), %.2fs",
                 generation_id, uri, download.size, download.sha256, mbps, download.attempts, elapsed)
    return result


def _already_there(dest: ObjectStoragePath, uri: str, download: _Downloaded, overwrite: str, chunk_size: int
                   ) -> tuple[int, str] | None:
    """(size, sha256) of an existing object to keep instead of the download, else ``None``."""
    if overwrite == "always":
        return None
    size = _stat(dest, uri)
    if size is None:
        return None
    if overwrite == "never":  # it appeared while we downloaded
        return _hash_object(dest, chunk_size, uri)
    if size != download.size:
        return None
    existing = _hash_object(dest, chunk_size, uri)
    return existing if existing[1] == download.sha256 else None


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "OVERWRITE_MODES",
    "DeliveryIntegrityError",
    "DeliveryResult",
    "DestinationError",
    "PermanentDeliveryError",
    "RenderNotCompletedError",
    "as_destination",
    "deliver_generation",
    "is_permanent",
    "redact",
    "str_uri",
]
