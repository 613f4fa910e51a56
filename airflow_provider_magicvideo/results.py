"""What tasks hand downstream, built the same way on the sync and the deferrable path.

* :func:`generation_result` — the XCom dict of a finished render;
* :func:`result_from_event` — the strict check of a trigger event in ``execute_complete``;
* :func:`fail_fast` — permanent errors become ``AirflowFailException`` so Airflow does not retry them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    AuthenticationError,
    GenerationFailedError,
    GenerationNotFoundError,
    GenerationTimeoutError,
    InsufficientCreditsError,
    InvalidInputError,
    RequestValidationError,
)
from airflow_provider_magicvideo.generation import Generation

#: Keys of the dict returned by the submit operator (when waiting) and the sensor.
RESULT_KEYS = ("generation_id", "status", "video_url", "url_expires_at", "credits_used", "model", "template")

#: Errors that retrying the task cannot fix (or, for an ambiguous submit, must not retry).
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    InvalidInputError,
    AuthenticationError,
    InsufficientCreditsError,
    RequestValidationError,
    GenerationFailedError,
    GenerationNotFoundError,
    AmbiguousSubmitError,
)


def generation_result(
    generation: Generation,
    *,
    model: str | None = None,
    template: str | None = None,
    credits_used: int | None = None,
) -> dict[str, Any]:
    """The dict a finished render hands downstream (JSON-serialisable for XCom)."""
    expires = generation.url_expires_at
    return {
        "generation_id": generation.id,
        "status": generation.raw_status,
        "video_url": generation.video_url,
        "url_expires_at": expires.isoformat() if expires else None,
        "credits_used": credits_used if credits_used is not None else generation.credits_used,
        "model": model,
        "template": template,
    }


def result_from_event(
    event: Mapping[str, Any] | None,
    *,
    model: str | None = None,
    template: str | None = None,
    credits_used: int | None = None,
) -> dict[str, Any]:
    """Validate a :class:`MagicVideoTrigger` event; return the result dict or raise a clear error."""
    if not event:
        raise AirflowException("MagicVideoTrigger resumed the task without an event; cannot tell the outcome.")
    status = event.get("status")
    generation_id = event.get("generation_id") or "<unknown>"
    if status == "success":
        if not event.get("video_url"):
            raise AirflowException(f"Generation {generation_id}: success event without a video URL.")
        return {
            "generation_id": generation_id,
            "status": event.get("generation_status", "completed"),
            "video_url": event["video_url"],
            "url_expires_at": event.get("url_expires_at"),
            "credits_used": credits_used if credits_used is not None else event.get("credits_used"),
            "model": model,
            "template": template,
        }
    if status == "error":
        message = event.get("message") or f"Generation {generation_id} failed."
        if event.get("fatal", True):
            raise AirflowFailException(message)
        raise AirflowException(message)
    if status == "timeout":
        raise GenerationTimeoutError(generation_id, event.get("waited"), event.get("last_status"),
                                     deadline=event.get("end_time"))
    raise AirflowException(f"Generation {generation_id}: unexpected trigger event status {status!r}: {dict(event)}")


@contextmanager
def fail_fast() -> Iterator[None]:
    """Turn errors that no retry can fix into ``AirflowFailException`` (message kept, key-free)."""
    try:
        yield
    except PERMANENT_ERRORS as exc:
        raise AirflowFailException(str(exc)) from exc
