"""results.py: the XCom dict, the strict check of trigger events, and which errors skip Airflow's retries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    AuthenticationError,
    ConnectionConfigError,
    CreditBudgetExceededError,
    GenerationFailedError,
    GenerationNotFoundError,
    GenerationTimeoutError,
    InsufficientCreditsError,
    InvalidInputError,
    RateLimitError,
    RequestValidationError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    UnknownTemplateError,
)
from airflow_provider_magicvideo.generation import Generation
from airflow_provider_magicvideo.results import RESULT_KEYS, fail_fast, generation_result, result_from_event

VIDEO_URL = (
    "https://cdn.magic.test/renders/gen-1.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Date=20250102T030405Z&X-Amz-Expires=600&X-Amz-Signature=deadbeef"
)


def completed(**extra) -> Generation:
    body = {"id": "gen-1", "status": "completed", "video": {"url": VIDEO_URL}, **extra}
    return Generation.from_payload(body)


# --------------------------------------------------------------------------- generation_result
def test_generation_result_shape_and_values():
    result = generation_result(completed(meta={"usage": {"credits_used": 1_050_000}}),
                               model="magic/image-to-video", template="Times Square Billboard")
    assert tuple(result) == RESULT_KEYS
    assert result == {
        "generation_id": "gen-1",
        "status": "completed",
        "video_url": VIDEO_URL,
        "url_expires_at": datetime(2025, 1, 2, 3, 14, 5, tzinfo=UTC).isoformat(),
        "credits_used": 1_050_000,
        "model": "magic/image-to-video",
        "template": "Times Square Billboard",
    }


def test_generation_result_prefers_the_submit_credits():
    assert generation_result(completed(), credits_used=42)["credits_used"] == 42
    assert generation_result(completed())["credits_used"] is None


def test_generation_result_without_url_has_no_expiry():
    pending = Generation.from_payload({"id": "gen-1", "status": "generating"})
    result = generation_result(pending)
    assert result["video_url"] is None
    assert result["url_expires_at"] is None


# --------------------------------------------------------------------------- result_from_event
def success_event(**extra) -> dict:
    return {"status": "success", "generation_id": "gen-1", "generation_status": "completed",
            "video_url": VIDEO_URL, "url_expires_at": "2025-01-02T03:14:05+00:00", "credits_used": 7, **extra}


def test_success_event_gives_the_same_shape_as_the_sync_path():
    from_event = result_from_event(success_event(), model="m", template="t")
    from_generation = generation_result(completed(meta={"usage": {"credits_used": 7}}), model="m", template="t")
    assert from_event == from_generation
    assert result_from_event(success_event(), credits_used=99)["credits_used"] == 99


@pytest.mark.parametrize("event", [None, {}])
def test_missing_event(event):
    with pytest.raises(AirflowException, match="without an event"):
        result_from_event(event)


def test_unknown_event_status():
    with pytest.raises(AirflowException, match="unexpected trigger event status 'paused'") as info:
        result_from_event({"status": "paused", "generation_id": "gen-9"})
    assert not isinstance(info.value, AirflowFailException)
    assert "gen-9" in str(info.value)


def test_fatal_error_event_fails_without_retry():
    event = {"status": "error", "generation_id": "gen-1", "fatal": True,
             "message": "Generation gen-1 failed: RenderError: face not found"}
    with pytest.raises(AirflowFailException, match="RenderError: face not found"):
        result_from_event(event)


def test_error_event_defaults_to_fatal():
    with pytest.raises(AirflowFailException, match="Generation gen-1 failed"):
        result_from_event({"status": "error", "generation_id": "gen-1"})


def test_non_fatal_error_event_is_retryable():
    with pytest.raises(AirflowException, match="polling failed") as info:
        result_from_event({"status": "error", "generation_id": "gen-1", "fatal": False,
                           "message": "Generation gen-1: status polling failed: HTTP 503"})
    assert not isinstance(info.value, AirflowFailException)


def test_timeout_event_names_the_generation():
    with pytest.raises(GenerationTimeoutError) as info:
        result_from_event({"status": "timeout", "generation_id": "gen-77", "waited": 12.3,
                           "last_status": "generating"})
    assert info.value.generation_id == "gen-77"
    assert "gen-77" in str(info.value)
    assert "generating" in str(info.value)
    assert "MagicVideoSensor(generation_id='gen-77')" in str(info.value)


def test_timeout_event_names_the_original_deadline():
    with pytest.raises(GenerationTimeoutError) as info:
        result_from_event({"status": "timeout", "generation_id": "gen-78", "waited": 3.0,
                           "end_time": "2026-11-27T00:40:00+00:00"})
    assert info.value.deadline == "2026-11-27T00:40:00+00:00"
    # Not the few seconds the current trigger ran: after a failover that would understate the wait.
    assert "did not complete by its deadline 2026-11-27T00:40:00+00:00" in str(info.value)
    assert "after 3s" not in str(info.value)


@pytest.mark.parametrize("url", [None, ""])
def test_success_without_video_url_is_refused(url):
    with pytest.raises(AirflowException, match="without a video URL"):
        result_from_event(success_event(video_url=url))


# --------------------------------------------------------------------------- fail_fast
PERMANENT = [
    InvalidInputError("image: empty"),
    UnknownTemplateError("template: 'nope' is not a template"),
    ConnectionConfigError("Connection has no API key"),
    CreditBudgetExceededError("credit_budget exceeded"),
    AuthenticationError("HTTP 401", status_code=401),
    InsufficientCreditsError("HTTP 403", status_code=403),
    RequestValidationError("HTTP 400", problems=["template: bad"], status_code=400),
    GenerationNotFoundError("HTTP 404", status_code=404),
    GenerationFailedError("gen-1", "RenderError", "face not found"),
    AmbiguousSubmitError("HTTP 502", client_request_id="airflow:d:t:r"),
]
TRANSIENT = [
    ServerError("HTTP 503", status_code=503),
    RateLimitError("HTTP 429", status_code=429),
    TransportError("no answer", request_sent=True),
    UnexpectedResponseError("not JSON"),
    GenerationTimeoutError("gen-1", 10.0, "generating"),
    RuntimeError("something else"),
]


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_fail_fast_turns_permanent_errors_into_fail_exceptions(error):
    with pytest.raises(AirflowFailException) as info, fail_fast():
        raise error
    assert str(info.value) == str(error)
    assert info.value.__cause__ is error


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_fail_fast_passes_transient_errors_through(error):
    with pytest.raises(type(error)) as info, fail_fast():
        raise error
    assert info.value is error


def test_fail_fast_without_error():
    with fail_fast():
        value = 1
    assert value == 1
