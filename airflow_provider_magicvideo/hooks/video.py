"""Downloading a rendered MP4 from the presigned URL the API returned, as bytes with provider errors only.

The URL is untrusted: before connecting to it, and to every redirect hop, :func:`check_video_url` refuses
what a worker must not fetch (other schemes, loopback, private and metadata addresses). The body is capped
(``max_video_bytes``), so an endless stream becomes a clear error instead of a full disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import urljoin

import requests

from airflow_provider_magicvideo.exceptions import PermanentDeliveryError, VideoUrlExpiredError
from airflow_provider_magicvideo.hooks.settings import USER_AGENT, ApiSettings
from airflow_provider_magicvideo.hooks.transport import connection_error_sync, error_from_response
from airflow_provider_magicvideo.hooks.video_url import RefusedVideoUrl, check_video_url
from airflow_provider_magicvideo.redaction import redact, strip_signature

MAX_REDIRECTS = 5
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_XML_FIELD = re.compile(r"<(Code|Message)>([^<]{0,200})</\1>")


class VideoStream:
    """An open download. ``start``: the byte offset its body begins at (0 when the server ignored a Range);
    ``total``: the whole file's size when the server said. Iterate :meth:`chunks`; always :meth:`close`."""

    def __init__(self, response: requests.Response, start: int, total: int | None, max_bytes: int) -> None:
        self._response = response
        self.start = start
        self.total = total
        self.max_bytes = max_bytes

    def chunks(self, size: int) -> Iterator[bytes]:
        received = self.start
        try:
            for chunk in self._response.iter_content(size):
                received += len(chunk)
                if received > self.max_bytes:
                    raise PermanentDeliveryError(
                        f"The video is larger than the {self.max_bytes:,}-byte limit (connection extra "
                        "'max_video_bytes'); stopped downloading.")
                yield chunk
        except (requests.RequestException, OSError) as exc:
            error = connection_error_sync(exc, "video download")
        else:
            return
        raise error  # outside the handler: the library's text may quote the signed URL

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> VideoStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _refused(exc: RefusedVideoUrl) -> PermanentDeliveryError:
    return PermanentDeliveryError(f"Refused to download the video from host {exc.host!r}: {exc.reason}. Video "
                                  "URLs must be https on a public address (the connection extra "
                                  "'allow_insecure_video_urls' allows http and loopback, for the emulator).")


def open_video(session: requests.Session, settings: ApiSettings, url: str, *, offset: int = 0,
               secrets: Iterable[str] = ()) -> VideoStream:
    """GET ``url`` from byte ``offset``, following at most :data:`MAX_REDIRECTS` checked redirects.

    No API key is sent: presigned URLs carry their own authorisation.
    """
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            url = check_video_url(url, allow_insecure=settings.allow_insecure_video_urls)
        except RefusedVideoUrl as exc:
            error: Exception = _refused(exc)
            break
        except OSError as exc:  # the host did not resolve: nothing was sent, another attempt may work
            error = connection_error_sync(exc, "video download")
            break
        try:
            resp = session.get(url, headers=headers, stream=True, timeout=settings.timeouts, allow_redirects=False)
        except requests.RequestException as exc:
            error = connection_error_sync(exc, "video download")
            break
        if resp.is_redirect and resp.headers.get("Location"):
            url = urljoin(url, resp.headers["Location"])
            resp.close()
            continue
        return _stream(resp, offset, settings.max_video_bytes, secrets)
    else:
        error = PermanentDeliveryError(f"The video URL redirected more than {MAX_REDIRECTS} times; refused.")
    raise error


def _stream(resp: requests.Response, offset: int, max_bytes: int, secrets: Iterable[str]) -> VideoStream:
    status = resp.status_code
    if status in (401, 403):
        text = resp.text[:2000]
        resp.close()
        fields = dict(_XML_FIELD.findall(text))
        detail = f"{fields.get('Code', 'AccessDenied')}: {fields.get('Message', 'refused')}"
        raise VideoUrlExpiredError(f"Video URL refused with HTTP {status}: {redact(detail, secrets)}",
                                   status_code=status)
    if status >= 400 or status not in (200, 206):
        text = resp.text[:2000]
        resp.close()
        raise error_from_response(status, strip_signature(text), resp.headers, action="video download",
                                  secrets=secrets)
    total: int | None = None
    start = 0
    if status == 206:
        match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if match is None:
            resp.close()
            raise error_from_response(502, "a 206 answer without a usable Content-Range", resp.headers,
                                      action="video download")
        start = int(match.group(1))
        total = None if match.group(3) == "*" else int(match.group(3))
    else:
        length = resp.headers.get("Content-Length", "")
        if resp.headers.get("Content-Encoding", "identity").lower() == "identity" and length.isdigit():
            total = int(length)
    if total is not None and total > max_bytes:
        resp.close()
        raise PermanentDeliveryError(f"The video is {total:,} bytes, over the {max_bytes:,}-byte limit "
                                     "(connection extra 'max_video_bytes').")
    return VideoStream(resp, start, total, max_bytes)
