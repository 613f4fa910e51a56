"""The typed result of the API: :class:`GenerationStatus` and the immutable :class:`Generation`."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_magicvideo.exceptions import UnexpectedResponseError

log = logging.getLogger(__name__)

#: The API's documented lifetime of a completed render's presigned URL.
URL_LIFETIME_SECONDS = 600
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")


class GenerationStatus(str, Enum):
    """Render status. ``UNKNOWN`` stands for a status string the API added that we do not know yet."""

    QUEUED = "queued"
    WAITING = "waiting"
    GENERATING = "generating"
    COMPLETED = "completed"
    ERROR = "error"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in (GenerationStatus.COMPLETED, GenerationStatus.ERROR)

    @property
    def is_pending(self) -> bool:
        # An unknown status is treated as "not done yet": new intermediate states are likelier than new
        # terminal ones, and the wait's deadline still bounds it.
        return not self.is_terminal


_warned_unknown: set[str] = set()


@dataclass(frozen=True)
class Generation:
    """One render as the API reported it. ``raw`` is the read-only response payload."""

    id: str
    status: GenerationStatus
    raw_status: str
    video_url: str | None = None
    error_name: str | None = None
    error_message: str | None = None
    credits_used: int | None = None
    usd_spent: float | None = None
    request_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def is_pending(self) -> bool:
        return self.status.is_pending

    @property
    def url_expires_at(self) -> datetime | None:
        """When ``video_url`` stops working: from its ``X-Amz-Date``/``X-Amz-Expires``, else +600 s from now."""
        if not self.video_url:
            return None
        query = parse_qs(urlsplit(self.video_url).query)
        try:
            # Not strptime: its first call imports and compiles, a visible stall on a triggerer's loop.
            match = _AMZ_DATE.fullmatch(query["X-Amz-Date"][0])
            if match is None:
                raise ValueError("X-Amz-Date")
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            signed = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
            lifetime = int(query["X-Amz-Expires"][0])
        except (KeyError, IndexError, ValueError):
            return datetime.now(UTC) + timedelta(seconds=URL_LIFETIME_SECONDS)
        return signed + timedelta(seconds=lifetime)

    @classmethod
    def from_payload(
        cls,
        payload: Any,
        *,
        generation_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Generation:
        """Parse a submit or status response body; raise :class:`UnexpectedResponseError` if unusable.

        A missing status, a non-object body, or ``completed`` without ``video.url`` is a failed poll,
        never a success.
        """
        headers = _case_insensitive(headers)
        request_id = headers.get("x-inference-id") or headers.get("x-request-id")
        if not isinstance(payload, Mapping):
            raise UnexpectedResponseError(
                f"AI/ML API answered with a {type(payload).__name__}, not a JSON object", request_id=request_id
            )
        gen_id = payload.get("id") or generation_id
        raw_status = payload.get("status")
        if not isinstance(gen_id, str) or not gen_id:
            raise UnexpectedResponseError("AI/ML API answer has no generation id", request_id=request_id)
        if not isinstance(raw_status, str) or not raw_status:
            raise UnexpectedResponseError(
                f"AI/ML API answer for generation {gen_id} has no status", request_id=request_id
            )
        try:
            status = GenerationStatus(raw_status.strip().lower())
        except ValueError:
            status = GenerationStatus.UNKNOWN
            if raw_status not in _warned_unknown:
                _warned_unknown.add(raw_status)
                log.warning(
                    "Generation %s has status %r, which this provider does not know; treating it as pending.",
                    gen_id, raw_status,
                )
        video = payload.get("video")
        video_url = video.get("url") if isinstance(video, Mapping) else None
        if status is GenerationStatus.COMPLETED and not (isinstance(video_url, str) and video_url):
            raise UnexpectedResponseError(
                f"AI/ML API reports generation {gen_id} completed but gives no video.url", request_id=request_id
            )
        error = payload.get("error")
        error_name = error_message = None
        if isinstance(error, Mapping):
            error_name = _str_or_none(error.get("name") or error.get("code"))
            error_message = _str_or_none(error.get("message"))
        elif error is not None:
            error_message = str(error)
        return cls(
            id=gen_id,
            status=status,
            raw_status=raw_status,
            video_url=video_url if isinstance(video_url, str) else None,
            error_name=error_name,
            error_message=error_message,
            credits_used=_credits(payload, headers),
            usd_spent=_float_or_none(headers.get("x-aimlapi-usd-spent")),
            request_id=request_id,
            raw=MappingProxyType(dict(payload)),
        )


def _case_insensitive(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    """Headers to look up by lower-case name. requests' and aiohttp's already are: copying them on
    every poll was a measurable share of a triggerer's CPU."""
    if headers is None:
        return {}
    if isinstance(headers, dict):  # a plain dict (tests, callers): fold the names
        return {k.lower(): v for k, v in headers.items()}
    return headers


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _credits(payload: Mapping[str, Any], headers: Mapping[str, str]) -> int | None:
    meta = payload.get("meta")
    usage = meta.get("usage") if isinstance(meta, Mapping) else None
    value = usage.get("credits_used") if isinstance(usage, Mapping) else None
    if value is None:
        value = headers.get("x-aimlapi-credits-used")
    number = _float_or_none(value)
    return None if number is None else int(number)
