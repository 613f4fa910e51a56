"""Stream a finished generation's MP4 into any :class:`ObjectStoragePath` destination.

:func:`deliver_generation` is the whole public surface. It asks the API for a fresh presigned URL right before
every download attempt, streams the body into a temporary object next to the destination (constant memory,
hashed on the fly, MP4 signature and length checked), resumes after an expired URL or a dropped stream, and
moves the finished object onto the final name only when it is complete and different from what is there
(``overwrite``). All HTTP goes through the hook; this package sees only provider errors.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_magicvideo import metrics
from airflow_provider_magicvideo.delivery.destination import (
    CONTENT_TYPE,
    as_destination,
    hash_object,
    stat,
    str_uri,
)
from airflow_provider_magicvideo.delivery.download import Download, Downloaded
from airflow_provider_magicvideo.exceptions import InvalidInputError

if TYPE_CHECKING:
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 1 << 20
Overwrite = Literal["if_different", "always", "never"]
OVERWRITE_MODES: tuple[str, ...] = get_args(Overwrite)


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
        return {"uri": self.uri, "size": self.size, "sha256": self.sha256, "content_type": self.content_type,
                "generation_id": self.generation_id, "skipped": self.skipped}


def deliver_generation(
    hook: MagicVideoHook,
    generation_id: str,
    destination: str | os.PathLike[str] | ObjectStoragePath,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_attempts: int = 4,
    overwrite: Overwrite = "if_different",
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryResult:
    """Stream the MP4 of a completed generation to ``destination`` and return what was delivered.

    :param hook: the :class:`MagicVideoHook` used for the status GET (fresh URL) and the download.
    :param generation_id: the generation's id.
    :param destination: ``file:///…``, ``s3://bucket/key``, a local path or an :class:`ObjectStoragePath`
        (use ``ObjectStoragePath("s3://b/k", conn_id="aws_default")`` to pick the storage connection).
    :param chunk_size: bytes per read/write; memory use is a small multiple of it.
    :param max_attempts: downloads tried (each with a fresh URL, resuming where the last one stopped).
    :param overwrite: ``"if_different"`` replaces an existing object only when its sha256 differs;
        ``"always"`` replaces it; ``"never"`` keeps any existing object without downloading.
    :raises RenderNotCompletedError: the generation is not completed (final when it failed).
    :raises PermanentDeliveryError: the destination is unusable, the bytes are not an MP4, the URL was refused.
    :raises DeliveryError: every attempt failed; the message names the generation, destination and cause.
    """
    if overwrite not in OVERWRITE_MODES:
        raise InvalidInputError(f"overwrite: {overwrite!r:.60} is not one of {', '.join(OVERWRITE_MODES)}.")
    if chunk_size < 1 or max_attempts < 1:
        raise InvalidInputError("chunk_size and max_attempts must be at least 1.")
    dest = as_destination(destination)
    uri = str_uri(dest)
    log.info("Delivering generation %s to %s", generation_id, uri)
    started = time.monotonic()

    existing = stat(dest, uri)
    if overwrite == "never" and existing is not None:
        size, digest = hash_object(dest, chunk_size, uri)
        log.info("Generation %s: %s already exists and overwrite='never'; not downloading (%d bytes, sha256 %s)",
                 generation_id, uri, size, digest)
        return DeliveryResult(uri=uri, size=size, sha256=digest, generation_id=generation_id, skipped=True)

    download = Download(hook, generation_id, dest, uri, chunk_size, max_attempts, sleep=sleep).run()
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
    metrics.delivery_finished(scheme=dest.protocol, size=download.size, seconds=elapsed, written=kept is None)
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


def _already_there(dest: ObjectStoragePath, uri: str, download: Downloaded, overwrite: str, chunk_size: int
                   ) -> tuple[int, str] | None:
    """(size, sha256) of an existing object to keep instead of the download, else ``None``."""
    if overwrite == "always":
        return None
    size = stat(dest, uri)
    if size is None:
        return None
    if overwrite == "never":  # it appeared while we downloaded
        return hash_object(dest, chunk_size, uri)
    if size != download.size:
        return None
    existing = hash_object(dest, chunk_size, uri)
    return existing if existing[1] == download.sha256 else None


__all__ = ["DEFAULT_CHUNK_SIZE", "OVERWRITE_MODES", "DeliveryResult", "Overwrite", "as_destination",
           "deliver_generation", "str_uri"]
