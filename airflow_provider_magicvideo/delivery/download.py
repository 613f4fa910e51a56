"""One resumable download of a generation's MP4 into a temporary object next to its destination.

Every attempt asks the API for a fresh presigned URL first, resumes with ``Range`` from the bytes already
written (restarting from byte 0 when the server ignores the range), hashes on the fly and checks the MP4
signature and the announced length. Whether another attempt may help is the error's ``disposition.transient``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_magicvideo.delivery.destination import (
    DEFERRED_COMMIT_PROTOCOLS,
    destination_failure,
    discard,
    is_local,
    open_for_write,
    promote,
    remove,
)
from airflow_provider_magicvideo.exceptions import (
    DeliveryError,
    MagicVideoError,
    PermanentDeliveryError,
    RenderNotCompletedError,
)
from airflow_provider_magicvideo.generation import GenerationStatus

if TYPE_CHECKING:
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
    from airflow_provider_magicvideo.hooks.video import VideoStream

log = logging.getLogger(__name__)


@dataclass
class Downloaded:
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
            promote(self.temp, self.dest, self.uri)
            return
        try:
            self.pending.commit()  # S3: CompleteMultipartUpload, atomic
        except Exception as exc:
            raise destination_failure(exc, "finish writing", self.uri) from exc
        with contextlib.suppress(Exception):
            self.dest.fs.invalidate_cache(self.dest.path)

    def discard(self) -> None:
        if self.pending is None:
            remove(self.temp)
        else:
            discard(self.pending, local=False)


class Download:
    """See the module docstring. ``run()`` returns a :class:`Downloaded` or raises a provider error."""

    def __init__(self, hook: MagicVideoHook, generation_id: str, dest: ObjectStoragePath, uri: str,
                 chunk_size: int, max_attempts: int, sleep: Callable[[float], None] = time.sleep) -> None:
        self.hook = hook
        self.generation_id = generation_id
        self.uri = uri
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts
        self.dest = dest
        self.sleep = sleep
        # S3 uploads stay invisible until committed, so they go straight to the final key; elsewhere a temporary
        # object next to the destination is renamed at the end.
        self.deferred = dest.protocol in DEFERRED_COMMIT_PROTOCOLS
        self.temp = dest if self.deferred else dest.parent / f"{dest.name}.part-{secrets.token_hex(6)}"
        self.handle: IO[bytes] | None = None
        self.written = 0
        self.hasher = hashlib.sha256()
        self.head = b""  # the first bytes, until the MP4 signature is checked

    # -- writer ---------------------------------------------------------------------------------------
    def _restart(self) -> None:
        """(Re)open an empty temporary object and forget every byte received so far."""
        if self.handle is not None:
            discard(self.handle, local=is_local(self.temp))
        self.handle = open_for_write(self.temp, self.uri, deferred=self.deferred)
        self.written = 0
        self.hasher = hashlib.sha256()
        self.head = b""

    def _write(self, data: bytes) -> None:
        if self.handle is None:
            self._restart()
        try:
            self.handle.write(data)  # type: ignore[union-attr]
        except Exception as exc:
            raise destination_failure(exc, "write", self.uri) from exc
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
            raise PermanentDeliveryError(f"Generation {self.generation_id}: the downloaded file is not an MP4 (no "
                                         f"'ftyp' box at byte 4); nothing was written to {self.uri}.")

    # -- one attempt ----------------------------------------------------------------------------------
    def _fresh_url(self) -> str:
        generation = self.hook.get_generation(self.generation_id)
        if generation.status is not GenerationStatus.COMPLETED or not generation.video_url:
            detail = None
            if generation.status is GenerationStatus.ERROR:
                detail = f"{generation.error_name or 'error'}: {generation.error_message or 'no message'}"
            raise RenderNotCompletedError(self.generation_id, generation.raw_status, detail)
        return generation.video_url

    def _begin(self, stream: VideoStream) -> None:
        """Line the temporary object up with where this answer's body starts."""
        if stream.start == self.written and self.handle is not None:
            return
        if stream.start != 0:
            asked = self.written
            self._restart()
            raise DeliveryError(f"asked for bytes {asked}-, the server sent from byte {stream.start}; restarting")
        if self.written:
            log.warning("Generation %s: the server ignored Range; restarting from byte 0 instead of %d",
                        self.generation_id, self.written)
        self._restart()

    def _attempt(self) -> None:
        if self.written == 0:
            self.head = b""  # bytes held back by a previous attempt arrive again
        with self.hook.open_video(self._fresh_url(), offset=self.written) as stream:
            self._begin(stream)
            total = stream.total
            for chunk in stream.chunks(self.chunk_size):
                if chunk:
                    self._accept(chunk)
                if total is not None and self.written > total:
                    raise PermanentDeliveryError(f"Generation {self.generation_id}: received more than the "
                                                 f"announced {total} bytes.")
        if self.written == 0 and self.head and (total is None or len(self.head) >= total):
            self._check_signature(self.head.ljust(8, b"\0"))  # fewer than 8 bytes in all
        if self.written == 0 and total in (None, 0):
            raise PermanentDeliveryError(f"Generation {self.generation_id}: the video is empty.")
        if total is not None and self.written < total:
            raise DeliveryError(f"the stream ended at byte {self.written} of {total}")

    # -- the loop -------------------------------------------------------------------------------------
    def run(self) -> Downloaded:
        attempt = 0
        try:
            while True:
                attempt += 1
                try:
                    self._attempt()
                    break
                except MagicVideoError as exc:
                    # A render that is not completed stays so for this delivery: the wait belongs to the
                    # sensor (and a task retry), not to the download loop.
                    if not exc.disposition.transient:
                        raise
                    if attempt >= self.max_attempts:
                        raise DeliveryError(f"Could not deliver generation {self.generation_id} to {self.uri} after "
                                            f"{attempt} attempt(s); last error: {type(exc).__name__}: {exc}") from exc
                    delay = min(0.5 * 2 ** (attempt - 2), 4.0) if attempt > 1 else 0.0
                    log.warning("Generation %s: download attempt %d/%d failed (%s: %s); fetching a fresh URL and "
                                "resuming at byte %d", self.generation_id, attempt, self.max_attempts,
                                type(exc).__name__, exc, self.written)
                    self.sleep(delay)
            handle, self.handle = self.handle, None
            if handle is None:
                raise PermanentDeliveryError(f"Generation {self.generation_id}: the video is empty.")
            try:
                handle.close()  # uploads the last part; commits everywhere but deferred-commit stores
            except Exception as exc:
                discard(handle, local=is_local(self.temp))
                raise destination_failure(exc, "finish writing", self.uri) from exc
        except BaseException:
            discard(self.handle, local=is_local(self.temp))
            self.handle = None
            if not self.deferred:  # deferred: the final key was never touched
                remove(self.temp)
            raise
        return Downloaded(self.temp, self.dest, self.uri, self.written, self.hasher.hexdigest(), attempt,
                          pending=handle if self.deferred else None)
