"""Every error this provider raises, in one place.

Three families:

* input problems found before any HTTP call (:class:`InvalidInputError`): no credit is spent;
* answers from the API (:class:`ApiError` and subclasses), built by :func:`api_error_from_response`;
* outcomes of a render (:class:`GenerationFailedError`, :class:`GenerationTimeoutError`) and the one
  case where we cannot know whether a render was billed (:class:`AmbiguousSubmitError`).

No message built here ever includes request headers, so the API key cannot leak through an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class MagicVideoError(Exception):
    """Base class of every error raised by airflow-provider-magicvideo."""


# --------------------------------------------------------------------------- input (nothing was sent)
class InvalidInputError(MagicVideoError, ValueError):
    """The task's input is wrong; raised before any HTTP call, so no credit was spent."""


class UnknownModelError(InvalidInputError):
    """``model`` is not one of the magic models."""


class UnknownTemplateError(InvalidInputError):
    """``template`` is not a template of the chosen model."""


class MediaError(InvalidInputError):
    """The image/video input cannot be used: empty, unreadable, not base64, a wrong type, not a regular file."""


class InvalidMediaError(MediaError):
    """The bytes claim a format the API accepts (by their signature) but are structurally broken."""


class MediaTooLargeError(MediaError):
    """The media is over the configured size limit."""


class ConnectionConfigError(InvalidInputError):
    """The Airflow connection is unusable (no API key, bad host, bad extra)."""


class CreditBudgetExceededError(InvalidInputError):
    """Submitting would take the DAG run's recorded spend over its ``credit_budget``."""


# --------------------------------------------------------------------------- API answers
class ApiError(MagicVideoError):
    """An error answer (or an unusable answer) from the AI/ML API.

    ``status_code`` is the HTTP status (``None`` for transport errors), ``request_id`` the API's
    ``requestId``/``x-inference-id`` when it sent one, ``api_message`` the server's own words.
    """

    hint = ""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        api_message: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
        client_request_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.client_request_id = client_request_id
        self.request_id = request_id
        self.api_message = api_message
        self.path = path
        self.retry_after = retry_after
        parts = [message]
        if self.hint:
            parts.append(self.hint)
        if request_id:
            parts.append(f"(requestId {request_id})")
        super().__init__(" ".join(parts))


class AuthenticationError(ApiError):
    """401: the API key was rejected."""

    hint = ("Fix: put a valid AI/ML API key in the password ('API key') field of the magicvideo "
            "connection; keys are at https://aimlapi.com/app/keys.")


class InsufficientCreditsError(ApiError):
    """403: the key is valid but the account cannot pay (out of credits or plan limit)."""

    hint = "Fix: top up the balance or update the payment method at https://aimlapi.com/app/billing."


class RequestValidationError(ApiError):
    """400: the API rejected the request body; ``problems`` holds one ``"field: problem"`` per issue."""

    def __init__(self, message: str, *, problems: list[str] | None = None, **kwargs: Any) -> None:
        self.problems = problems or []
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message, **kwargs)


class GenerationNotFoundError(ApiError):
    """404: the API knows no generation with this id (or the endpoint does not exist)."""


class RateLimitError(ApiError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds, when it gave one."""


class ServerError(ApiError):
    """5xx from the API."""


class TransportError(ApiError):
    """The request did not get an HTTP answer (connection refused, reset, timeout).

    ``request_sent`` is False only when the request provably never reached the server (connection
    refused, connect timeout, DNS failure): the one case in which a submit can be retried safely.
    """

    def __init__(self, message: str, *, request_sent: bool, **kwargs: Any) -> None:
        self.request_sent = request_sent
        super().__init__(message, **kwargs)


class UnexpectedResponseError(ApiError):
    """An HTTP 2xx whose body cannot be used: not JSON, no status, or completed without ``video.url``."""


class VideoUrlExpiredError(ApiError):
    """The presigned video URL was refused (expired after its 10 minutes, or a bad signature)."""

    hint = "Fetch a fresh URL with get_generation(); the API signs a new one on every status request."


class DeliveryError(MagicVideoError):
    """The MP4 could not be delivered intact to its destination."""


class RenderNotCompletedError(DeliveryError):
    """The render is not ``completed``; ``permanent`` when it ended in ``error`` (retrying cannot help)."""

    def __init__(self, generation_id: str, status: str, detail: str | None = None) -> None:
        self.generation_id = generation_id
        self.status = status
        self.permanent = status == "error"
        why = f": {detail}" if detail else ""
        hint = (" It will never have a video; submit a new render." if self.permanent
                else " Wait for it to complete (MagicVideoSensor) before delivering.")
        super().__init__(f"Cannot deliver generation {generation_id}: its status is {status!r}, "
                         f"not 'completed'{why}.{hint}")


class PermanentDeliveryError(DeliveryError):
    """A delivery failure that a retry of the task cannot fix (bad key, unknown generation, ...)."""

    permanent = True


class DestinationError(PermanentDeliveryError):
    """The destination cannot be written (bad path, a directory, missing bucket, no permission)."""


class DeliveryIntegrityError(PermanentDeliveryError):
    """The bytes received are not the announced MP4 (bad signature, more bytes than announced)."""


class AmbiguousSubmitError(MagicVideoError):
    """A submit was sent but its outcome is unknown, so a billed render may exist.

    It is never retried automatically: resubmitting could pay for the same video twice.
    """

    def __init__(self, cause: str, *, client_request_id: str | None = None) -> None:
        self.client_request_id = client_request_id
        ref = f" The request carried X-Client-Request-Id {client_request_id!r}." if client_request_id else ""
        super().__init__(
            f"The submit request was sent but no usable answer came back ({cause}), so a render may have "
            f"been created and billed.{ref} It was NOT resubmitted automatically. Check your generations "
            "and usage at https://aimlapi.com/app before running the task again; if a render exists, wait "
            "on its generation id with MagicVideoSensor instead of submitting again."
        )


# --------------------------------------------------------------------------- render outcomes
class GenerationFailedError(MagicVideoError):
    """The render ended in status ``error``; carries the API's error name and message."""

    def __init__(self, generation_id: str, error_name: str | None, error_message: str | None) -> None:
        self.generation_id = generation_id
        self.error_name = error_name
        self.error_message = error_message
        super().__init__(
            f"Generation {generation_id} failed: {error_name or 'error'}: "
            f"{error_message or 'the API gave no message'}"
        )


class GenerationTimeoutError(MagicVideoError):
    """The render was still pending when the wait's deadline passed."""

    def __init__(self, generation_id: str, waited: float | None = None, last_status: str | None = None,
                 *, deadline: str | None = None) -> None:
        self.generation_id = generation_id
        self.waited = waited
        self.last_status = last_status
        self.deadline = deadline
        # A deferred wait names its absolute deadline: after a triggerer failover the current trigger's own
        # elapsed time would understate how long the render was waited for.
        after = f" by its deadline {deadline}" if deadline else (f" after {waited:.0f}s" if waited is not None else "")
        status = f" (last status: {last_status})" if last_status else ""
        super().__init__(
            f"Generation {generation_id} did not complete{after}{status}. It may still finish and was "
            f"already paid for: wait on it again with MagicVideoSensor(generation_id={generation_id!r}) "
            "or raise the timeout instead of submitting a new render."
        )


# --------------------------------------------------------------------------- response → exception
_STATUS_CLASSES: dict[int, type[ApiError]] = {
    400: RequestValidationError,
    401: AuthenticationError,
    403: InsufficientCreditsError,
    404: GenerationNotFoundError,
    429: RateLimitError,
}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` when absent/garbage."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000" parses naive; it means UTC, not local time
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    import time

    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _validation_problems(body: Mapping[str, Any]) -> list[str]:
    """Turn the API's validation detail (zod-style issue lists, or a bare message) into "field: problem"."""
    problems: list[str] = []
    for key in ("meta", "errors", "issues", "details"):
        items = body.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, Mapping):
                problems.append(str(item))
                continue
            where = item.get("path") or item.get("field") or item.get("loc")
            if isinstance(where, list):
                where = ".".join(str(p) for p in where if p not in ("body",))
            text = item.get("message") or item.get("msg") or json.dumps(dict(item), default=str)
            problems.append(f"{where}: {text}" if where else str(text))
    message = body.get("message")
    if isinstance(message, list):  # NestJS-style: a list of strings
        problems.extend(str(m) for m in message)
    return problems


def api_error_from_response(
    status_code: int, body_text: str, headers: Mapping[str, str] | None = None, *, action: str = "request"
) -> ApiError:
    """Build the typed error for an HTTP error answer; accepts a missing, non-JSON or odd body."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    body: Any = None
    try:
        body = json.loads(body_text) if body_text else None
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        body = {}
    raw_message = body.get("message")
    api_message = raw_message if isinstance(raw_message, str) else None
    if api_message is None:
        snippet = " ".join((body_text or "").split())[:200]
        api_message = snippet or None
    request_id = body.get("requestId") or headers.get("x-request-id") or headers.get("x-inference-id")
    cls = _STATUS_CLASSES.get(status_code) or (ServerError if status_code >= 500 else ApiError)
    message = f"AI/ML API {action} failed with HTTP {status_code}: {api_message or 'no message'}"
    kwargs: dict[str, Any] = dict(
        status_code=status_code,
        request_id=str(request_id) if request_id else None,
        api_message=api_message,
        path=body.get("path") if isinstance(body.get("path"), str) else None,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )
    if cls is RequestValidationError:
        return RequestValidationError(message, problems=_validation_problems(body), **kwargs)
    return cls(message, **kwargs)
