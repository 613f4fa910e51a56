"""Typed errors from API answers, Retry-After parsing, render-outcome messages, and no key leaks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import urllib3.exceptions

from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    AuthenticationError,
    ConnectFailedError,
    GenerationFailedError,
    GenerationNotFoundError,
    GenerationTimeoutError,
    InsufficientCreditsError,
    MagicVideoError,
    RateLimitError,
    RequestValidationError,
    ServerError,
)
from airflow_provider_magicvideo.hooks.transport import error_from_response as api_error_from_response
from airflow_provider_magicvideo.hooks.transport import parse_retry_after
from airflow_provider_magicvideo.redaction import truncate

NOW = 1_700_000_000.0


# --------------------------------------------------------------------------- transport.error_from_response
def test_400_with_zod_issue_list_gives_field_problems():
    body = {
        "statusCode": 400,
        "message": "Validation failed",
        "meta": [
            {"code": "invalid_enum_value", "path": ["template"], "message": "Invalid enum value 'Foo'"},
            {"path": ["body", "image_url"], "message": "Required"},
            {"field": "model", "msg": "bad model"},
            {"code": "custom"},  # no path, no message: kept as JSON
            "plain string issue",
        ],
        "requestId": "req-400",
    }
    err = api_error_from_response(400, json.dumps(body), {}, action="submit")
    assert type(err) is RequestValidationError
    assert err.status_code == 400
    assert err.request_id == "req-400"
    assert err.api_message == "Validation failed"
    assert err.problems == [
        "template: Invalid enum value 'Foo'",
        "image_url: Required",
        "model: bad model",
        '{"code": "custom"}',
        "plain string issue",
    ]
    message = str(err)
    assert message.startswith("AI/ML API submit failed with HTTP 400: Validation failed")
    assert "\n  - template: Invalid enum value 'Foo'" in message
    assert message.endswith("(requestId req-400)")


@pytest.mark.parametrize("key", ["errors", "issues", "details"])
def test_400_other_issue_keys(key):
    body = {"message": "bad", key: [{"loc": ["body", "template"], "msg": "not allowed"}]}
    err = api_error_from_response(400, json.dumps(body))
    assert err.problems == ["template: not allowed"]


def test_400_nestjs_message_list():
    body = {"statusCode": 400, "message": ["template must be one of ...", "image_url must be a URL"],
            "error": "Bad Request"}
    err = api_error_from_response(400, json.dumps(body))
    assert isinstance(err, RequestValidationError)
    assert err.problems == ["template must be one of ...", "image_url must be a URL"]
    assert "  - image_url must be a URL" in str(err)


def test_400_without_problems_has_no_list():
    err = api_error_from_response(400, json.dumps({"message": "nope", "meta": {"not": "a list"}}))
    assert isinstance(err, RequestValidationError)
    assert err.problems == []
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    ("status", "cls", "hint"),
    [
        (401, AuthenticationError, "https://aimlapi.com/app/keys"),
        (403, InsufficientCreditsError, "https://aimlapi.com/app/billing"),
        (404, GenerationNotFoundError, None),
        (429, RateLimitError, None),
        (500, ServerError, None),
        (502, ServerError, None),
        (503, ServerError, None),
        (504, ServerError, None),
        (599, ServerError, None),
        (409, ApiStatusError, None),
        (418, ApiStatusError, None),
        (422, ApiStatusError, None),
    ],
)
def test_status_to_class(status, cls, hint):
    err = api_error_from_response(status, json.dumps({"message": "server words"}), {}, action="status request")
    assert type(err) is cls
    assert err.status_code == status
    assert err.api_message == "server words"
    assert f"AI/ML API status request failed with HTTP {status}: server words" in str(err)
    if hint:
        assert hint in str(err)
        assert "Fix:" in str(err)


@pytest.mark.parametrize(
    ("body", "api_message"),
    [
        ("", None),
        (None, None),
        ("<html><body>502   Bad\nGateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
        ("[1, 2]", "[1, 2]"),
        ('"just a string"', '"just a string"'),
        ('{"message": 42}', None),  # a JSON object without a text message
        ("x" * 500, truncate("x" * 500, 200)),  # cut, saying how long it was
    ],
)
def test_missing_non_json_and_odd_bodies(body, api_message):
    err = api_error_from_response(502, body, None)
    assert isinstance(err, ServerError)
    assert err.api_message == api_message
    assert err.request_id is None
    assert err.retry_after is None
    if api_message is None:
        assert "HTTP 502: no message" in str(err)


def test_request_id_from_body_then_headers():
    body = json.dumps({"message": "m", "requestId": "from-body", "path": "/v2/video/generations"})
    err = api_error_from_response(404, body, {"x-inference-id": "from-header"})
    assert err.request_id == "from-body"
    err = api_error_from_response(404, json.dumps({"message": "m", "path": 5}), {"X-Inference-Id": "inf-1"})
    assert err.request_id == "inf-1"
    assert "(requestId inf-1)" in str(err)
    err = api_error_from_response(404, "", {"X-Request-Id": "r-2", "x-inference-id": "inf-2"})
    assert err.request_id == "r-2"


def test_429_retry_after_seconds_and_http_date():
    err = api_error_from_response(429, "{}", {"Retry-After": "7"})
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 7.0
    future = datetime.now(UTC) + timedelta(seconds=120)
    err = api_error_from_response(429, "{}", {"retry-after": format_datetime(future, usegmt=True)})
    assert 110 <= err.retry_after <= 121


# --------------------------------------------------------------------------- parse_retry_after
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("soon", None),
        ("12", 12.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("Tue, 14 Nov 2023 22:13:40 GMT", 20.0),  # NOW + 20 s
        ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),  # in the past
        ("Tue, 14 Nov 2023 22:14:20 -0000", 60.0),  # "-0000" is UTC too, not local time
        ("Tue, 14 Nov 2023 23:14:20 +0100", 60.0),
        ("Tue, 99 Nov 2023 22:13:40 GMT", None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_minus_zero_zone_is_utc_whatever_the_local_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_retry_after("Tue, 14 Nov 2023 22:14:20 -0000", now=NOW) == 60.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_parse_retry_after_uses_the_clock_by_default():
    future = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= parse_retry_after(format_datetime(future, usegmt=True)) <= 31


# --------------------------------------------------------------------------- render outcomes
def test_ambiguous_submit_error_message():
    err = AmbiguousSubmitError("HTTP 502", client_request_id="dag:task:run:1")
    message = str(err)
    assert "(HTTP 502)" in message
    assert "'dag:task:run:1'" in message
    assert "NOT resubmitted" in message
    assert "MagicVideoSensor" in message
    assert err.client_request_id == "dag:task:run:1"
    assert "X-Client-Request-Id" not in str(AmbiguousSubmitError("ReadTimeout"))


def test_generation_failed_error_message():
    err = GenerationFailedError("gen-1", "ContentPolicy", "the image was refused")
    assert str(err) == "Generation gen-1 failed: ContentPolicy: the image was refused"
    assert (err.generation_id, err.error_name, err.error_message) == ("gen-1", "ContentPolicy",
                                                                        "the image was refused")
    assert str(GenerationFailedError("gen-2", None, None)) == "Generation gen-2 failed: error: the API gave no message"


def test_generation_timeout_error_message():
    err = GenerationTimeoutError("gen-9", "2026-01-01T00:16:40+00:00", "generating")
    message = str(err)
    assert message.startswith("Generation gen-9 did not complete by its deadline 2026-01-01T00:16:40+00:00 "
                              "(last status: generating).")
    assert "MagicVideoSensor(generation_id='gen-9')" in message
    assert "instead of submitting a new generation" in message
    bare = str(GenerationTimeoutError("gen-8", "2026-01-01T00:00:00+00:00"))
    assert "last status" not in bare


def test_hierarchy():
    for cls in (ApiError, AmbiguousSubmitError, GenerationFailedError, GenerationTimeoutError):
        assert issubclass(cls, MagicVideoError)
    assert issubclass(ConnectFailedError, ApiConnectionError)
    assert issubclass(ApiConnectionError, ApiError)
    assert not issubclass(ApiConnectionError, ApiStatusError)
    err = ConnectFailedError("boom")
    assert not hasattr(err, "status_code")  # only answers have a status


# --------------------------------------------------------------------------- the API key never leaks
def _all_text(exc: BaseException) -> str:
    """Every string an error shows: str, repr, args, attributes, and the whole cause/context chain."""
    texts: list[str] = []
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        texts += [str(cur), repr(cur), repr(cur.args), repr(vars(cur))]
        stack += [cur.__cause__, cur.__context__]
    return "\n".join(texts)


@pytest.mark.parametrize(
    ("method", "mock"),
    [
        ("get", {"status_code": 401, "json": {"message": "Invalid API key", "requestId": "r1"}}),
        ("get", {"status_code": 403, "json": {"message": "No credits"}}),
        ("get", {"status_code": 404, "text": "Not Found"}),
        ("get", {"status_code": 400, "json": {"message": ["generation_id must be a string"]}}),
        ("get", {"status_code": 503, "text": "<html>down</html>"}),
        ("get", {"status_code": 429, "headers": {"Retry-After": "1"}}),
        ("get", {"status_code": 200, "text": "not json"}),
        ("get", {"exc": requests.exceptions.ConnectTimeout}),
        ("post", {"status_code": 502, "text": "bad gateway"}),
        ("post", {"exc": requests.exceptions.ReadTimeout("read timed out")}),
        ("post", {"status_code": 400, "json": {"message": "bad", "meta": [{"path": ["template"],
                                                                              "message": "Invalid"}]}}),
        ("post", {"exc": requests.exceptions.ConnectionError(
            urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))}),
    ],
)
def test_errors_built_from_responses_never_contain_the_api_key(
    method, mock, requests_mock, magicvideo_conn, api_key
):
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook

    magicvideo_conn("https://api.example.test/v2", max_retries=1)
    requests_mock.register_uri(method.upper(), "https://api.example.test/v2/video/generations", **mock)
    hook = MagicVideoHook()
    hook.sleep = lambda seconds: None
    with pytest.raises(MagicVideoError) as info:
        if method == "get":
            hook.get_generation("gen-1")
        else:
            hook.submit(image="https://example.com/a.png", template="Art Gallery")
    # The key really was on the wire, so the check below is meaningful.
    assert requests_mock.last_request.headers["Authorization"] == f"Bearer {api_key}"
    text = _all_text(info.value)
    assert api_key not in text
    assert api_key[:12] not in text
