"""Destinations of a delivery: any :class:`ObjectStoragePath` (``file://``, ``s3://``, ...) naming a file.

Storage failures are classified here: :class:`PermanentDeliveryError` for what a retry cannot fix (a bad path,
a missing bucket, no permission), :class:`DeliveryError` for the rest.

Hook-level lineage: of ObjectStoragePath's methods, ``open()`` (its file's ``read``/``write``), ``copy()`` and
``move()`` report to Airflow's hook lineage collector; ``rename()``/``replace()``, ``unlink()`` and the
filesystem (``path.fs``) do not. So the delivered object is written with ``open()`` when it is written in place
(S3: the upload stays invisible until committed) and otherwise reaches its name through ``move()``. A temporary
object is written through the filesystem, so that it is never reported as an output, and the checks that read
an existing object (stat, sha256) also go through it: they are not inputs of the task.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import IO, Any

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_magicvideo.exceptions import DeliveryError, PermanentDeliveryError
from airflow_provider_magicvideo.redaction import strip_signature

CONTENT_TYPE = "video/mp4"
#: Write buffer / read-ahead for remote stores (s3fs defaults to 50 MiB; S3 parts must be >= 5 MiB).
REMOTE_BLOCK_SIZE = 8 << 20
LOCAL_PROTOCOLS = ("", "file", "local")
#: Stores whose uploads become visible only on commit (S3 multipart): written in place, committed last.
DEFERRED_COMMIT_PROTOCOLS = ("s3", "s3a", "s3n")


def as_destination(destination: str | os.PathLike[str] | ObjectStoragePath, conn_id: str | None = None
                   ) -> ObjectStoragePath:
    """Turn a URI, a local path or an :class:`ObjectStoragePath` into an ObjectStoragePath for a file.

    Plain local paths become absolute ``file://`` paths. ``conn_id`` (e.g. an AWS connection for
    ``s3://``) overrides the one of an ObjectStoragePath. Raises :class:`PermanentDeliveryError` when the
    destination cannot name a file.
    """
    if isinstance(destination, ObjectStoragePath):
        path = destination if conn_id is None else ObjectStoragePath(str_uri(destination), conn_id=conn_id)
    else:
        text = os.fspath(destination).strip() if isinstance(destination, os.PathLike | str) else None
        if not text:
            raise PermanentDeliveryError(f"destination: {destination!r} is not a path or URI of a file.")
        if text.endswith(("/", os.sep)):
            raise PermanentDeliveryError(f"destination: {text!r} names a folder; give the full file name, "
                                   "e.g. .../video.mp4.")
        if "://" not in text:
            text = "file://" + str(Path(text).expanduser().absolute())
        try:
            path = ObjectStoragePath(text, conn_id=conn_id)
        except Exception as exc:
            raise PermanentDeliveryError(f"destination: {text!r} is not usable: {exc}") from exc
    name = path.name
    if not name or str(path).endswith("/") or name in (".", ".."):
        raise PermanentDeliveryError(f"destination: {str_uri(path)!r} names a folder; give the full file name, "
                               "e.g. .../video.mp4.")
    if path.protocol not in LOCAL_PROTOCOLS and not getattr(path, "key", name):
        raise PermanentDeliveryError(f"destination: {str_uri(path)!r} has no object key.")
    return path


def str_uri(path: ObjectStoragePath) -> str:
    """``file:///abs/path`` or ``s3://bucket/key`` (no connection id, unlike ``str(ObjectStoragePath)``)."""
    if path.protocol in LOCAL_PROTOCOLS:
        return "file://" + os.path.abspath(path.path)
    return f"{path.protocol}://{path.path}"


def is_local(path: ObjectStoragePath) -> bool:
    return path.protocol in LOCAL_PROTOCOLS


def destination_failure(exc: BaseException, action: str, uri: str) -> DeliveryError:
    """Classify a storage failure: permanent (bad path, no bucket, no permission) or worth a task retry."""
    message = f"Cannot {action} {uri}: {type(exc).__name__}: {strip_signature(str(exc))}"
    permanent = (PermissionError, FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError)
    if isinstance(exc, permanent):
        return PermanentDeliveryError(message)
    return DeliveryError(message)


def stat(path: ObjectStoragePath, uri: str) -> int | None:
    """Size of the object at ``path``; ``None`` when absent; PermanentDeliveryError when it is a folder."""
    fs = path.fs
    try:
        with contextlib.suppress(Exception):
            fs.invalidate_cache(path.path)
        info = fs.info(path.path)
    except FileNotFoundError:
        return None
    except Exception as exc:
        raise destination_failure(exc, "inspect", uri) from exc
    if info.get("type") == "directory":
        raise PermanentDeliveryError(f"destination: {uri} is a folder; give the full file name, e.g. .../video.mp4.")
    size = info.get("size")
    return int(size) if size is not None else None


def hash_object(path: ObjectStoragePath, chunk_size: int, uri: str) -> tuple[int, str]:
    """(size, sha256) of an existing object, streamed."""
    digest = hashlib.sha256()
    size = 0
    kwargs = {} if is_local(path) else {"block_size": REMOTE_BLOCK_SIZE}
    try:
        with path.fs.open(path.path, "rb", **kwargs) as handle:
            while chunk := handle.read(chunk_size):
                digest.update(chunk)
                size += len(chunk)
    except Exception as exc:
        raise destination_failure(exc, "read", uri) from exc
    return size, digest.hexdigest()


def open_for_write(path: ObjectStoragePath, uri: str, *, deferred: bool = False) -> IO[bytes]:
    """Open ``path`` for writing: with ``deferred``, ``path`` is the destination itself, written uncommitted
    (and reported to the hook lineage collector); otherwise a temporary object (not reported)."""
    kwargs: dict[str, Any] = {"autocommit": False} if deferred else {}
    if is_local(path):
        try:
            Path(path.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise destination_failure(exc, "create the folder of", uri) from exc
    else:
        kwargs["block_size"] = REMOTE_BLOCK_SIZE
        if path.protocol in ("s3", "s3a"):
            kwargs["ContentType"] = CONTENT_TYPE
    try:
        if deferred:
            return path.open("wb", **kwargs)
        return path.fs.open(path.path, "wb", **kwargs)
    except Exception as exc:
        raise destination_failure(exc, "write", uri) from exc


def discard(handle: IO[bytes] | None, *, local: bool) -> None:
    """Abandon a write without committing it (aborts an S3 multipart upload), ignoring errors."""
    if handle is None:
        return
    # ObjectStoragePath.open() wraps the file for lineage: an attribute set on the wrapper would miss the file.
    file: Any = getattr(handle, "_obj", handle)
    if not local:
        with contextlib.suppress(Exception):
            file.discard()
            file.closed = True  # fsspec: close() must not upload the rest
    with contextlib.suppress(Exception):
        file.close()


def remove(path: ObjectStoragePath) -> None:
    with contextlib.suppress(Exception):
        path.fs.rm_file(path.path) if is_local(path) else path.fs.rm(path.path)


def promote(temp: ObjectStoragePath, dest: ObjectStoragePath, uri: str) -> None:
    """Move the finished temporary object onto the final name: ``ObjectStoragePath.move`` (which reports the
    destination to the hook lineage collector); locally a rename in the same folder, so atomic."""
    try:
        temp.move(dest)
        if not is_local(dest):
            with contextlib.suppress(Exception):
                dest.fs.invalidate_cache(dest.path)
    except Exception as exc:
        raise destination_failure(exc, "move the finished download onto", uri) from exc
