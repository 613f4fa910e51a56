"""A generation as the API reports it (:class:`Generation`), and the one dict a finished one hands downstream.

Everything in an answer is untrusted: numbers may be NaN, infinite, negative or text, a URL may carry a
nonsense signing date. Parsing never raises for those: the value becomes ``None`` (with one warning).
"""

from __future__ import annotations

import ast
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_magicvideo.exceptions import InvalidInputError, UnexpectedResponseError
from airflow_provider_magicvideo.redaction import truncate

log = logging.getLogger(__name__)

#: The API's documented lifetime of a completed generation's presigned URL.
URL_LIFETIME_SECONDS = 600
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_MAX_URL_LIFETIME = 7 * 86_400  # S3's own limit for presigned URLs


class GenerationStatus(str, Enum):
    """Status of a generation. The OpenAPI enum is queued/generating/completed/error; the docs' sample loops also
    wait on ``waiting`` and ``active``. ``UNKNOWN`` stands for a string we do not know yet (treated as pending:
    new intermediate states are likelier than new terminal ones, and the wait's deadline still bounds it)."""

    QUEUED = "queued"
    WAITING = "waiting"
    ACTIVE = "active"
    GENERATING = "generating"
    COMPLETED = "completed"
    ERROR = "error"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, raw: str) -> GenerationStatus:
        try:
            return cls(raw.strip().lower())
        except ValueError:
            if raw not in _warned_unknown:
                _warned_unknown.add(raw)
                log.warning("Status %r is not known to this provider; treating it as pending.", truncate(raw, 40))
            return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        return self in (GenerationStatus.COMPLETED, GenerationStatus.ERROR)


_warned_unknown: set[str] = set()


@dataclass(frozen=True)
class Generation:
    """One generation as the API reported it."""

    id: str
    status: GenerationStatus
    raw_status: str
    video_url: str | None = None
    error_name: str | None = None
    error_message: str | None = None
    credits_used: int | None = None
    request_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def url_expires_at(self) -> datetime | None:
        """When ``video_url`` stops working: from its ``X-Amz-Date``/``X-Amz-Expires``, else +600 s from now."""
        if not self.video_url:
            return None
        query = parse_qs(urlsplit(self.video_url).query)
        try:
            # Not strptime: its first call imports and compiles, a visible stall on a triggerer's loop.
            match = _AMZ_DATE.fullmatch(query["X-Amz-Date"][0])
            lifetime = int(query["X-Amz-Expires"][0])
            if match is None or not 0 < lifetime <= _MAX_URL_LIFETIME:
                raise ValueError("X-Amz-Date/X-Amz-Expires")
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            signed = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
            return signed + timedelta(seconds=lifetime)
        except (KeyError, IndexError, ValueError, OverflowError):
            return datetime.now(UTC) + timedelta(seconds=URL_LIFETIME_SECONDS)

    @classmethod
    def from_payload(cls, payload: Any, *, generation_id: str | None = None,
                     headers: Mapping[str, str] | None = None) -> Generation:
        """Parse a submit or status answer; :class:`UnexpectedResponseError` when it cannot be used.

        A missing status, a non-object body, another generation's id, or ``completed`` without ``video.url``
        is a failed poll, never a success.
        """
        headers = headers if headers is not None and not isinstance(headers, dict) else {
            k.lower(): v for k, v in (headers or {}).items()}
        request_id = _text(headers.get("x-inference-id") or headers.get("x-request-id"), 100)
        if not isinstance(payload, Mapping):
            raise UnexpectedResponseError(f"AI/ML API answered with a {type(payload).__name__}, not a JSON object",
                                          request_id=request_id)
        gen_id = payload.get("id") or generation_id
        if not isinstance(gen_id, str) or not gen_id.strip():
            raise UnexpectedResponseError("AI/ML API answer has no generation id", request_id=request_id)
        if generation_id is not None and gen_id != generation_id:
            raise UnexpectedResponseError(f"AI/ML API answered the status request for {generation_id} with another "
                                          f"generation's id ({truncate(gen_id, 80)})", request_id=request_id)
        raw_status = payload.get("status")
        if not isinstance(raw_status, str) or not raw_status.strip():
            raise UnexpectedResponseError(f"AI/ML API answer for generation {gen_id} has no status",
                                          request_id=request_id)
        status = GenerationStatus.parse(raw_status)
        video = payload.get("video")
        video_url = video.get("url") if isinstance(video, Mapping) else None
        if not (isinstance(video_url, str) and video_url.strip()):
            video_url = None
        if status is GenerationStatus.COMPLETED and video_url is None:
            raise UnexpectedResponseError(f"AI/ML API reports generation {gen_id} completed but gives no video.url",
                                          request_id=request_id)
        error = payload.get("error")
        error_name = error_message = None
        if isinstance(error, Mapping):
            error_name = _text(error.get("name") or error.get("code"), 100)
            error_message = _text(error.get("message"), 500)
        elif error is not None:
            error_message = _text(error, 500)
        return cls(id=gen_id.strip(), status=status, raw_status=truncate(raw_status, 40), video_url=video_url,
                   error_name=error_name, error_message=error_message, request_id=request_id,
                   credits_used=credits_of(payload, headers))

    def result(self, *, model: str | None = None, template: str | None = None,
               credits_used: int | None = None) -> dict[str, Any]:
        """The dict a finished generation hands downstream (JSON-serialisable for XCom), on every path."""
        expires = self.url_expires_at
        return {
            "generation_id": self.id,
            "status": self.raw_status,
            "video_url": self.video_url,
            "url_expires_at": expires.isoformat() if expires else None,
            "credits_used": credits_used if credits_used is not None else self.credits_used,
            "model": model,
            "template": template,
        }


#: Keys of :meth:`Generation.result`.
RESULT_KEYS = ("generation_id", "status", "video_url", "url_expires_at", "credits_used", "model", "template")


def credits_of(payload: Mapping[str, Any], headers: Mapping[str, str]) -> int | None:
    """``meta.usage.credits_used`` (else the ``x-aimlapi-credits-used`` header) of an answer; never raises."""
    meta = payload.get("meta")
    usage = meta.get("usage") if isinstance(meta, Mapping) else None
    credits = usage.get("credits_used") if isinstance(usage, Mapping) else None
    return count_or_none(credits if credits is not None else headers.get("x-aimlapi-credits-used"), "credits_used")


def count_or_none(value: Any, name: str) -> int | None:
    """A non-negative whole count from an untrusted answer; ``None`` (warned once) for anything else."""
    if value is None:
        return None
    try:
        number = float(value)
        if isinstance(value, bool) or not math.isfinite(number) or number < 0 or number > 2**62:
            raise ValueError
        return int(number)
    except (TypeError, ValueError, OverflowError):
        if name not in _warned_unknown:
            _warned_unknown.add(name)
            log.warning("The API sent %s=%s, which is not a count; ignoring it.", name, truncate(value, 40))
        return None


def _text(value: Any, limit: int) -> str | None:
    return None if value is None else truncate(str(value), limit)


def resolve_generation_id(value: Any, field: str = "generation_id") -> str:
    """A generation id from a plain id or the dict a submit operator/sensor returns.

    Also accepts that dict rendered to a string by a Jinja template (JSON, or a Python repr).
    """
    if isinstance(value, str) and value.strip().startswith("{"):
        for parse in (json.loads, ast.literal_eval):
            try:
                value = parse(value.strip())
                break
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
    if isinstance(value, Mapping):
        value = value.get("generation_id") or value.get("id")
    if not isinstance(value, str) or not value.strip() or value.strip().lower() in ("none", "null"):
        raise InvalidInputError(
            f"{field}: {truncate(value, 100)} is not a generation id. Pass the id (a string) or the dict returned by "
            "MagicVideoSubmitOperator/MagicVideoSensor; a template that rendered to 'None' usually means the "
            "upstream XCom is missing."
        )
    return value.strip()
