"""MagicVideoHook (sync, requests): submit, status, retries, the ambiguous-submit rule, waiting, downloads,
and the connection settings it validates before any request."""

from __future__ import annotations

import http.client
import json
import logging
import pathlib
import re

import pytest
import requests
import urllib3.exceptions

from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    ApiConnectionError,
    ApiStatusError,
    AuthenticationError,
    ConnectFailedError,
    ConnectionConfigError,
    GenerationFailedError,
    GenerationNotFoundError,
    GenerationTimeoutError,
    InsufficientCreditsError,
    InvalidInputError,
    MediaError,
    MediaTooLargeError,
    RateLimitError,
    RequestValidationError,
    ServerError,
    UnexpectedResponseError,
    UnknownModelError,
    UnknownTemplateError,
    VideoUrlExpiredError,
)
from airflow_provider_magicvideo.generation import GenerationStatus
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.hooks.settings import (
    DEFAULT_BASE_URL,
    USER_AGENT,
    ApiSettings,
    normalize_base_url,
)
from airflow_provider_magicvideo.hooks.submission import build_submit_body, make_client_request_id
from tests.hooks.support import (
    BASE_URL,
    CLIENT_REQUEST_ID_RE,
    GENERATIONS_URL,
    HOOK_LOGGER,
    MP4_BYTES,
    VIDEO_URL,
    FakeClock,
    payload,
)

IMAGE_URL = "https://raw.githubusercontent.com/aimlapi/api-docs/main/reference-files/aimlapi.jpg"
SUBMITTED = {"id": "gen-1", "status": "queued", "meta": {"usage": {"credits_used": 1050000}}}


def _connection_refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens: ConnectionError(MaxRetryError(reason=NewConnectionError))."""
    new_conn = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/v2", reason=new_conn))


def _remote_disconnected() -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError(
            "Connection aborted.", http.client.RemoteDisconnected("Remote end closed connection without response")
        )
    )


# ================================================================================================ submit
def test_submit_image_to_video_sends_the_exact_body_and_headers(hook, requests_mock, api_key):
    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    generation = hook.submit(image=IMAGE_URL, template="New York Times Square(66)")

    assert requests_mock.call_count == 1
    request = requests_mock.last_request
    assert request.method == "POST"
    assert request.json() == {
        "model": "magic/image-to-video",
        "image_url": IMAGE_URL,
        "template": "New York Times Square (66)",
    }
    assert request.headers["Authorization"] == f"Bearer {api_key}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert re.fullmatch(CLIENT_REQUEST_ID_RE, request.headers["X-Client-Request-Id"])
    assert request.headers["X-Client-Request-Id"] == "dag_1:task_1:run_1:1"
    assert generation.id == "gen-1"
    assert generation.status is GenerationStatus.QUEUED
    assert generation.credits_used == 1050000


def test_submit_image_bytes_as_data_uri(hook, requests_mock, png_bytes):
    import base64

    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    hook.submit(model="magic/image-to-video", image=png_bytes, template="rotating \u0421ards")
    body = requests_mock.last_request.json()
    assert body["image_url"] == "data:image/png;base64," + base64.b64encode(png_bytes).decode()
    assert body["template"] == "Rotating Cards"


def test_submit_video_to_video(hook, requests_mock):
    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    hook.submit(model="magic/video-to-video", video="https://example.com/in.mp4", template="New York Times Square(67)")
    assert requests_mock.last_request.json() == {
        "model": "magic/video-to-video",
        "video_url": "https://example.com/in.mp4",
        "template": "New York Times Square (67)",
    }
    hook.submit(model="VIDEO_TO_VIDEO", video=MP4_BYTES)
    body = requests_mock.last_request.json()
    assert body["video_url"].startswith("data:video/mp4;base64,")
    assert body["template"] == "Thailand Street"  # the model default


def test_submit_text_to_video(hook, requests_mock):
    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    hook.submit(model="magic/text-to-video", prompt="  A drone show spelling AIRFLOW  ")
    assert requests_mock.last_request.json() == {
        "model": "magic/text-to-video",
        "prompt": "A drone show spelling AIRFLOW",
        "template": "Shanghai Drone Show",
    }


def test_submit_default_template_for_image(hook, requests_mock):
    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    hook.submit(image=IMAGE_URL)
    assert requests_mock.last_request.json()["template"] == "Thailand Street"


def test_submit_credits_from_header(hook, requests_mock):
    requests_mock.post(GENERATIONS_URL, json={"id": "g", "status": "queued"},
                       headers={"x-aimlapi-credits-used": "1050000", "x-inference-id": "inf-1"})
    generation = hook.submit(image=IMAGE_URL)
    assert generation.credits_used == 1050000
    assert generation.request_id == "inf-1"


def test_default_client_request_id_is_valid_and_unique(conn):
    first, second = MagicVideoHook(), MagicVideoHook()
    for hook in (first, second):
        assert re.fullmatch(CLIENT_REQUEST_ID_RE, hook.client_request_id)
        assert hook.client_request_id.startswith("airflow:")
    assert first.client_request_id != second.client_request_id
    assert MagicVideoHook(client_request_id="dag id/with spaces").client_request_id == "dag-id-with-spaces"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"image": IMAGE_URL, "template": "Nowhere Special"}, UnknownTemplateError),
        ({"image": IMAGE_URL, "model": "magic/image-to-music"}, UnknownModelError),
        ({"model": "magic/video-to-video", "video": "https://x.test/a.mp4", "template": "Digital Float"},
         UnknownTemplateError),
        ({}, MediaError),
        ({"image": ""}, MediaError),
        ({"image": b"GIF89a\x01\x00\x01\x00"}, MediaError),
        ({"image": 12345}, MediaError),
        ({"model": "magic/video-to-video", "video": b"\x89PNG\r\n\x1a\n0000"}, MediaError),
        ({"model": "magic/video-to-video"}, MediaError),
        ({"image": IMAGE_URL, "prompt": "a cat"}, InvalidInputError),
        ({"image": IMAGE_URL, "video": "https://x.test/a.mp4"}, InvalidInputError),
        ({"model": "magic/text-to-video", "image": IMAGE_URL, "prompt": "x"}, InvalidInputError),
        ({"model": "magic/text-to-video"}, InvalidInputError),
        ({"model": "magic/text-to-video", "prompt": "   "}, InvalidInputError),
        ({"model": "magic/text-to-video", "prompt": 42}, InvalidInputError),
    ],
)
def test_input_errors_raise_before_any_http_call(hook, requests_mock, kwargs, error):
    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    with pytest.raises(error) as info:
        hook.submit(**kwargs)
    assert requests_mock.call_count == 0
    assert re.match(r"^(image|video|prompt|model|template)\b", str(info.value))


def test_wrong_input_message_names_the_extra_fields():
    with pytest.raises(InvalidInputError, match=r"^prompt: not used by magic/image-to-video, which takes 'image'"):
        build_submit_body(image=IMAGE_URL, prompt="x")


def test_max_media_bytes_extra_is_enforced_before_sending(conn, sleeps, requests_mock, png_bytes):
    conn(max_media_bytes=len(png_bytes) - 1)
    hook = MagicVideoHook()
    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    with pytest.raises(MediaTooLargeError, match=f"over the {len(png_bytes) - 1:,}-byte limit"):
        hook.submit(image=png_bytes)
    assert requests_mock.call_count == 0


def test_missing_api_key_fails_before_any_http_call(monkeypatch, requests_mock):
    monkeypatch.setenv("AIRFLOW_CONN_MAGICVIDEO_NOKEY",
                       json.dumps({"conn_type": "magicvideo", "host": BASE_URL, "password": "  "}))
    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    with pytest.raises(ConnectionConfigError, match="'magicvideo_nokey' has no API key"):
        MagicVideoHook("magicvideo_nokey").submit(image=IMAGE_URL)
    assert requests_mock.call_count == 0


# ================================================================================================ status
@pytest.mark.parametrize("status", ["queued", "waiting", "generating", "completed", "error"])
def test_get_generation_every_status(hook, requests_mock, status, api_key):
    requests_mock.get(GENERATIONS_URL, json=payload(status))
    generation = hook.get_generation("gen-1")
    assert requests_mock.last_request.qs == {"generation_id": ["gen-1"]}
    assert requests_mock.last_request.headers["Authorization"] == f"Bearer {api_key}"
    assert generation.status is GenerationStatus(status)
    assert generation.raw_status == status
    if status == "completed":
        assert generation.video_url == VIDEO_URL
    if status == "error":
        assert generation.error_name == "RenderError"
        assert generation.error_message == "the template could not be rendered"


def test_get_generation_fills_in_a_missing_id(hook, requests_mock):
    requests_mock.get(GENERATIONS_URL, json={"status": "queued"})
    assert hook.get_generation("gen-77").id == "gen-77"


@pytest.mark.parametrize(
    ("status", "body", "error", "calls"),
    [
        (400, {"message": ["generation_id must be a string"]}, RequestValidationError, 1),
        (401, {"message": "Invalid API key"}, AuthenticationError, 1),
        (403, {"message": "Insufficient credits"}, InsufficientCreditsError, 1),
        (404, {"message": "Generation not found"}, GenerationNotFoundError, 1),
        (409, {"message": "Conflict"}, ApiStatusError, 1),
        (429, {"message": "Too many requests"}, RateLimitError, 4),
        (500, {"message": "boom"}, ServerError, 4),
        (503, None, ServerError, 4),
    ],
)
def test_get_generation_error_mapping(hook, requests_mock, status, body, error, calls):
    requests_mock.get(GENERATIONS_URL, status_code=status, json=body, headers={"x-inference-id": "inf-9"})
    with pytest.raises(error) as info:
        hook.get_generation("gen-1")
    assert type(info.value) is error
    assert info.value.status_code == status
    assert info.value.request_id == "inf-9"
    assert info.value.client_request_id == hook.client_request_id
    assert requests_mock.call_count == calls


def test_get_generation_retries_then_succeeds(hook, requests_mock, sleeps):
    requests_mock.get(GENERATIONS_URL, [
        {"status_code": 503, "text": "unavailable"},
        {"status_code": 503, "text": "unavailable"},
        {"status_code": 200, "json": payload("generating")},
    ])
    assert hook.get_generation("gen-1").status is GenerationStatus.GENERATING
    assert requests_mock.call_count == 3
    assert len(sleeps) == 2
    assert all(0 <= s <= 8 for s in sleeps)


def test_retry_after_is_honoured(hook, requests_mock, sleeps):
    requests_mock.get(GENERATIONS_URL, [
        {"status_code": 429, "headers": {"Retry-After": "3"}},
        {"status_code": 429, "headers": {"Retry-After": "7200"}},  # too long: ignored, jittered backoff
        {"status_code": 200, "json": payload("queued")},
    ])
    hook.get_generation("gen-1")
    assert requests_mock.call_count == 3
    assert sleeps[0] == 3.0
    assert 0 <= sleeps[1] <= 1.0


@pytest.mark.parametrize(
    "exc", [requests.exceptions.ReadTimeout, requests.exceptions.ConnectTimeout, _remote_disconnected,
            _connection_refused],
)
def test_get_retries_transport_errors(hook, requests_mock, exc):
    requests_mock.get(GENERATIONS_URL, [{"exc": exc()}, {"exc": exc()}, {"json": payload("queued")}])
    assert hook.get_generation("gen-1").status is GenerationStatus.QUEUED
    assert requests_mock.call_count == 3


def test_get_transport_errors_exhausted(conn, hook, requests_mock):
    requests_mock.get(GENERATIONS_URL, exc=requests.exceptions.ReadTimeout)
    with pytest.raises(ApiConnectionError) as info:
        hook.get_generation("gen-1")
    assert type(info.value) is ApiConnectionError  # maybe sent: not a ConnectFailedError
    assert "no answer (ReadTimeout)" in str(info.value)
    assert requests_mock.call_count == 4


def test_max_retries_extra(conn, requests_mock, sleeps):
    conn(max_retries=1)
    hook = MagicVideoHook()
    hook.sleep = sleeps
    requests_mock.get(GENERATIONS_URL, status_code=502)
    with pytest.raises(ServerError):
        hook.get_generation("gen-1")
    assert requests_mock.call_count == 2


@pytest.mark.parametrize("text", ["<html>Gateway</html>", "", "{truncated"])
def test_non_json_200_is_an_unexpected_response(hook, requests_mock, text):
    requests_mock.get(GENERATIONS_URL, text=text, headers={"x-inference-id": "inf-3"})
    with pytest.raises(UnexpectedResponseError, match="not JSON") as info:
        hook.get_generation("gen-1")
    assert info.value.request_id == "inf-3"
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("answer", [{"text": "<html>ok</html>"}, {"json": {"status": "queued"}}, {"json": ["x"]}])
def test_unreadable_2xx_to_a_submit_is_ambiguous_and_not_resubmitted(hook, requests_mock, answer):
    # The POST reached the server and got a 2xx: a billed render may exist even if we cannot read its id.
    requests_mock.post(GENERATIONS_URL, **answer)
    with pytest.raises(AmbiguousSubmitError, match="may have been created") as info:
        hook.submit(image=IMAGE_URL)
    assert info.value.client_request_id == hook.client_request_id
    assert requests_mock.call_count == 1


def test_completed_without_url_is_an_unexpected_response(hook, requests_mock):
    requests_mock.get(GENERATIONS_URL, json={"id": "gen-1", "status": "completed"})
    with pytest.raises(UnexpectedResponseError, match=r"no video\.url"):
        hook.get_generation("gen-1")


# ================================================================================================ submit retries
@pytest.mark.parametrize(
    "mock",
    [
        {"exc": requests.exceptions.ReadTimeout},
        {"exc": _remote_disconnected()},
        {"exc": requests.exceptions.ChunkedEncodingError("Connection broken")},
        {"status_code": 502, "text": "Bad Gateway"},
        {"status_code": 500, "json": {"message": "internal"}},
        {"status_code": 504},
    ],
)
def test_post_with_unknown_outcome_is_ambiguous_and_sent_once(hook, requests_mock, sleeps, mock):
    requests_mock.post(GENERATIONS_URL, [mock, {"json": SUBMITTED}])
    with pytest.raises(AmbiguousSubmitError) as info:
        hook.submit(image=IMAGE_URL)
    assert requests_mock.call_count == 1
    assert sleeps == []
    assert info.value.client_request_id == "dag_1:task_1:run_1:1"
    assert "'dag_1:task_1:run_1:1'" in str(info.value)
    assert "NOT resubmitted" in str(info.value)


@pytest.mark.parametrize(
    "exc", [requests.exceptions.ConnectTimeout, _connection_refused,
            lambda: requests.exceptions.ConnectionError(
                urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection"))],
)
def test_post_retried_when_it_never_left(hook, requests_mock, sleeps, exc):
    requests_mock.post(GENERATIONS_URL, [{"exc": exc()}, {"exc": exc()}, {"json": SUBMITTED}])
    assert hook.submit(image=IMAGE_URL).id == "gen-1"
    assert requests_mock.call_count == 3
    assert len(sleeps) == 2


def test_post_retried_on_429_with_retry_after(hook, requests_mock, sleeps):
    requests_mock.post(GENERATIONS_URL, [{"status_code": 429, "headers": {"Retry-After": "2"}}, {"json": SUBMITTED}])
    assert hook.submit(image=IMAGE_URL).id == "gen-1"
    assert requests_mock.call_count == 2
    assert sleeps == [2.0]


@pytest.mark.parametrize(("status", "error"), [(400, RequestValidationError), (401, AuthenticationError),
                                               (403, InsufficientCreditsError)])
def test_post_client_errors_are_not_retried(hook, requests_mock, status, error):
    body = {"message": "Invalid", "meta": [{"path": ["template"], "message": "Invalid enum value"}]}
    requests_mock.post(GENERATIONS_URL, status_code=status, json=body)
    with pytest.raises(error) as info:
        hook.submit(image=IMAGE_URL)
    assert requests_mock.call_count == 1
    if status == 400:
        assert info.value.problems == ["template: Invalid enum value"]


# ================================================================================================ waiting
@pytest.fixture
def clock(hook) -> FakeClock:
    fake = FakeClock()
    fake.attach(hook)
    return fake


def test_wait_returns_the_completed_generation(hook, clock, requests_mock):
    requests_mock.get(GENERATIONS_URL, [{"json": payload(s)} for s in ("queued", "generating", "completed")])
    generation = hook.wait_for_generation("gen-1", poll_interval=15, timeout=1000)
    assert generation.status is GenerationStatus.COMPLETED
    assert generation.video_url == VIDEO_URL
    assert requests_mock.call_count == 3
    assert clock.slept == [15, 15]


def test_wait_raises_generation_failed(hook, clock, requests_mock):
    requests_mock.get(GENERATIONS_URL, [{"json": payload("generating")}, {"json": payload("error")}])
    with pytest.raises(GenerationFailedError) as info:
        hook.wait_for_generation("gen-1", poll_interval=1, timeout=100)
    assert (info.value.generation_id, info.value.error_name, info.value.error_message) == (
        "gen-1", "RenderError", "the template could not be rendered")
    assert str(info.value) == "Generation gen-1 failed: RenderError: the template could not be rendered"


def test_wait_times_out_naming_the_id(hook, clock, requests_mock):
    requests_mock.get(GENERATIONS_URL, json=payload("generating"))
    with pytest.raises(GenerationTimeoutError) as info:
        hook.wait_for_generation("gen-1", poll_interval=10, timeout=35)
    assert info.value.generation_id == "gen-1"
    assert info.value.last_status == "generating"
    assert "gen-1" in str(info.value) and "MagicVideoSensor(generation_id='gen-1')" in str(info.value)
    assert clock.slept == [10, 10, 10, 5]  # the last sleep is cut to the deadline
    assert requests_mock.call_count == 5


def test_wait_uses_connection_defaults(conn, clock, requests_mock):
    conn(poll_interval=7, wait_timeout=20)
    hook = clock.attach(MagicVideoHook())
    requests_mock.get(GENERATIONS_URL, json=payload("queued"))
    with pytest.raises(GenerationTimeoutError):
        hook.wait_for_generation("gen-1")
    assert clock.slept == [7, 7, 6]


def test_wait_tolerates_n_failed_polls(conn, clock, requests_mock):
    conn(max_retries=0)
    hook = clock.attach(MagicVideoHook())
    requests_mock.get(GENERATIONS_URL, [
        {"status_code": 503}, {"text": "<html>not json</html>"}, {"status_code": 502},
        {"json": payload("completed")},
    ])
    generation = hook.wait_for_generation("gen-1", poll_interval=2, timeout=1000, max_consecutive_poll_failures=3)
    assert generation.status is GenerationStatus.COMPLETED
    assert requests_mock.call_count == 4
    assert clock.slept == [2, 4, 8]  # exponential backoff after failed polls


def test_wait_fails_on_n_plus_one_failed_polls(conn, clock, requests_mock):
    conn(max_retries=1)
    hook = clock.attach(MagicVideoHook())
    requests_mock.get(GENERATIONS_URL, status_code=503)
    with pytest.raises(ServerError):
        hook.wait_for_generation("gen-1", poll_interval=1, timeout=10_000, max_consecutive_poll_failures=3)
    assert requests_mock.call_count == 4 * 2  # 4 polls, each retried once


def test_wait_failure_counter_resets_after_a_good_poll(conn, clock, requests_mock):
    conn(max_retries=0)
    hook = clock.attach(MagicVideoHook())
    requests_mock.get(GENERATIONS_URL, [
        {"status_code": 500}, {"status_code": 500}, {"json": payload("generating")},
        {"status_code": 500}, {"status_code": 500}, {"json": payload("completed")},
    ])
    assert hook.wait_for_generation("gen-1", poll_interval=1, max_consecutive_poll_failures=2).is_terminal


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationError), (403, InsufficientCreditsError),
                                               (404, GenerationNotFoundError)])
def test_wait_fails_immediately_on_permanent_errors(hook, clock, requests_mock, status, error):
    requests_mock.get(GENERATIONS_URL, [{"json": payload("generating")}, {"status_code": status}])
    with pytest.raises(error):
        hook.wait_for_generation("gen-1", poll_interval=1, timeout=1000, max_consecutive_poll_failures=10)
    assert requests_mock.call_count == 2


def test_wait_logs_only_on_status_change(hook, clock, requests_mock, caplog):
    caplog.set_level(logging.INFO, logger=HOOK_LOGGER)
    responses = [{"json": payload("queued")}] + [{"json": payload("generating")}] * 50
    responses += [{"status_code": 503}] * 4 + [{"json": payload("generating")}, {"json": payload("completed")}]
    requests_mock.get(GENERATIONS_URL, responses)
    hook.wait_for_generation("gen-1", poll_interval=1, timeout=10_000)
    messages = [r.getMessage() for r in caplog.records if r.name == HOOK_LOGGER]
    status_lines = [m for m in messages if re.match(r"Generation gen-1: (queued|generating|completed) \(after", m)]
    assert [m.split()[2] for m in status_lines] == ["queued", "generating", "completed"]
    assert sum("status polls work again after 1 failure(s)" in m for m in messages) == 1
    assert sum("status poll failed (1/5 tolerated)" in m for m in messages) == 1
    assert len(messages) == 5


# ================================================================================================ test_connection
BALANCE_URL = BASE_URL.removesuffix("/v2") + "/v1/billing/balance"


def balance_body(credits, low=False) -> dict:
    return {"balance": credits, "lowBalance": low, "lowBalanceThreshold": 10_000_000,
            "lastUpdated": "2026-12-02T10:00:00.000Z", "autoDebitStatus": "disabled", "status": "current",
            "statusExplanation": "Balance is current and up to date"}


@pytest.mark.parametrize(
    ("mock", "ok", "words"),
    [
        ({"json": balance_body(98_950_000)}, True, "balance 98,950,000 credits (~94 generations)."),
        ({"json": balance_body(5_000_000, low=True)}, True, "WARNING: the account reports a low balance"),
        ({"json": {"balance": "lots"}}, False, "no numeric 'balance'"),
        ({"status_code": 401, "json": {"message": "Invalid key"}}, False, "rejected"),
        ({"status_code": 403, "json": {"message": "No credits"}}, False, "top up the balance"),
        ({"exc": _connection_refused()}, False, "Connection test failed"),
        ({"status_code": 500}, False, "Connection test failed"),
    ],
)
def test_test_connection_reads_the_balance(hook, requests_mock, mock, ok, words):
    # Before issue #17 the test asked for a generation id that cannot exist (a 404 meant "key accepted").
    requests_mock.get(BALANCE_URL, **mock)
    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    result, message = hook.test_connection()
    assert result is ok
    assert words in message
    assert {r.method for r in requests_mock.request_history} == {"GET"}  # never a billed POST
    assert {r.url for r in requests_mock.request_history} == {BALANCE_URL}
    if ok:
        assert message.startswith(f"Connection OK: key accepted by {BASE_URL}, balance ")


def test_get_balance(hook, requests_mock):
    requests_mock.get(BALANCE_URL, json=balance_body(2_100_000, low=True))
    balance = hook.get_balance()
    assert (balance.credits, balance.generations, balance.low, balance.low_threshold) == (2_100_000, 2, True,
                                                                                         10_000_000)
    assert requests_mock.last_request.headers["Authorization"].startswith("Bearer ")


def test_test_connection_without_key(monkeypatch, requests_mock):
    monkeypatch.setenv("AIRFLOW_CONN_MAGICVIDEO_NOKEY", json.dumps({"conn_type": "magicvideo", "host": BASE_URL}))
    ok, message = MagicVideoHook("magicvideo_nokey").test_connection()
    assert ok is False
    assert "has no API key" in message
    assert requests_mock.call_count == 0


def test_ui_field_behaviour():
    behaviour = MagicVideoHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == ["login", "schema"]  # the port stays: Airflow 3.3's Test action needs it
    assert behaviour["relabeling"]["port"] == "API port"
    assert behaviour["relabeling"]["password"] == "API key"


def test_ui_field_behaviour_validates_against_airflows_schema():
    jsonschema = pytest.importorskip("jsonschema")
    import airflow

    schema_file = pathlib.Path(airflow.__file__).parent / "customized_form_field_behaviours.schema.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(MagicVideoHook.get_ui_field_behaviour(), schema)  # raises ValidationError if not


# ================================================================================================ open_video
# A public IP literal: the SSRF guard resolves host names, and the tests must not depend on DNS.
PUBLIC_VIDEO_URL = VIDEO_URL.replace("cdn.magic.test", "93.184.215.14")


def test_open_video_streams_without_the_api_key(hook, requests_mock, api_key):
    requests_mock.get(PUBLIC_VIDEO_URL, content=MP4_BYTES,
                      headers={"Content-Type": "video/mp4", "Content-Length": str(len(MP4_BYTES))})
    with hook.open_video(PUBLIC_VIDEO_URL) as stream:
        assert (stream.start, stream.total) == (0, len(MP4_BYTES))
        assert b"".join(stream.chunks(16)) == MP4_BYTES
    sent = requests_mock.last_request.headers
    assert "Authorization" not in sent
    assert api_key not in repr(dict(sent))
    assert "Range" not in sent
    assert sent["User-Agent"] == USER_AGENT


def test_open_video_resumes_with_range(hook, requests_mock):
    requests_mock.get(PUBLIC_VIDEO_URL, status_code=206, content=MP4_BYTES[10:],
                      headers={"Content-Range": f"bytes 10-{len(MP4_BYTES) - 1}/{len(MP4_BYTES)}"})
    with hook.open_video(PUBLIC_VIDEO_URL, offset=10) as stream:
        assert (stream.start, stream.total) == (10, len(MP4_BYTES))
        assert b"".join(stream.chunks(1024)) == MP4_BYTES[10:]
    assert requests_mock.last_request.headers["Range"] == "bytes=10-"
    assert "Authorization" not in requests_mock.last_request.headers


def test_open_video_expired_presigned_url(hook, requests_mock):
    xml = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
           "<Message>Request has expired</Message><X-Amz-Expires>600</X-Amz-Expires></Error>")
    requests_mock.get(PUBLIC_VIDEO_URL, status_code=403, text=xml)
    with pytest.raises(VideoUrlExpiredError) as info:
        hook.open_video(PUBLIC_VIDEO_URL)
    assert info.value.status_code == 403
    assert "Video URL refused with HTTP 403: AccessDenied: Request has expired" in str(info.value)
    assert "A fresh URL is signed on every status request" in str(info.value)
    assert info.value.disposition.transient  # the download loop fetches a fresh URL


def test_open_video_refused_without_xml(hook, requests_mock):
    requests_mock.get(PUBLIC_VIDEO_URL, status_code=401, text="nope")
    with pytest.raises(VideoUrlExpiredError, match="HTTP 401: AccessDenied: refused"):
        hook.open_video(PUBLIC_VIDEO_URL)


def test_open_video_server_error_and_transport_error(hook, requests_mock):
    requests_mock.get(PUBLIC_VIDEO_URL, status_code=500, text="oops")
    with pytest.raises(ServerError, match="video download failed with HTTP 500"):
        hook.open_video(PUBLIC_VIDEO_URL)
    requests_mock.get(PUBLIC_VIDEO_URL, exc=requests.exceptions.ConnectTimeout)
    with pytest.raises(ConnectFailedError):
        hook.open_video(PUBLIC_VIDEO_URL)


def test_open_video_unresolvable_host_is_a_connect_failure(hook, requests_mock):
    # A DNS failure of the video host was a raw socket.gaierror that escaped the download's retry loop.
    with pytest.raises(ConnectFailedError, match="could not connect"):
        hook.open_video("https://renders.invalid/v.mp4")
    assert requests_mock.call_count == 0


def test_close_drops_the_session(hook):
    first = hook.session
    hook.close()
    assert hook.session is not first
    hook.close()
    hook.close()  # idempotent


# ================================================================================================ settings
@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        (None, None, None, DEFAULT_BASE_URL),
        ("", None, None, DEFAULT_BASE_URL),
        ("   ", None, None, DEFAULT_BASE_URL),
        ("api.aimlapi.com", None, None, "https://api.aimlapi.com/v2"),
        ("api.aimlapi.com/v2", None, None, "https://api.aimlapi.com/v2"),
        ("localhost:8000", None, None, "http://localhost:8000/v2"),
        ("127.0.0.1:9/v2", None, None, "http://127.0.0.1:9/v2"),
        ("[::1]:8080", None, None, "http://[::1]:8080/v2"),
        ("example.com", "http", None, "http://example.com/v2"),
        ("localhost", "https", None, "https://localhost/v2"),
        ("example.com", "ftp", None, "https://example.com/v2"),
        ("example.com", None, 8443, "https://example.com:8443/v2"),
        ("https://example.com:9000", None, 8443, "https://example.com:9000/v2"),
        # The form's "API port" (visible for Airflow 3.3's Test action): the scheme's own port adds nothing.
        ("https://api.aimlapi.com/v2", None, 443, "https://api.aimlapi.com/v2"),
        ("api.aimlapi.com", None, 443, "https://api.aimlapi.com/v2"),
        ("http://example.com/v2", None, 80, "http://example.com/v2"),
        ("http://example.com/v2", None, 443, "http://example.com:443/v2"),
        (None, None, 443, DEFAULT_BASE_URL),
        ("http://127.0.0.1:8787/v2", None, 8787, "http://127.0.0.1:8787/v2"),
        ("api.aimlapi.com", None, 0, "https://api.aimlapi.com/v2"),
        ("https://api.aimlapi.com/v2/", None, None, "https://api.aimlapi.com/v2"),
        ("https://api.aimlapi.com/", None, None, "https://api.aimlapi.com/v2"),
        ("https://proxy.corp/aiml/v2", None, None, "https://proxy.corp/aiml/v2"),
        ("http://emulator:8000/v2?x=1#frag", None, None, "http://emulator:8000/v2"),
        (" https://api.aimlapi.com/v2 ", None, None, "https://api.aimlapi.com/v2"),
    ],
)
def test_normalize_base_url(host, schema, port, expected):
    assert normalize_base_url(host, schema=schema, port=port) == expected


@pytest.mark.parametrize("host", ["ftp://example.com", "https://", "file:///tmp/x", "https://ho st/v2"])
def test_normalize_base_url_rejects(host):
    with pytest.raises(ConnectionConfigError, match=r"^host: .* is not an http\(s\) address"):
        normalize_base_url(host)


@pytest.mark.parametrize("host", ["https://host:abc/v2", "https://host:99999", "https://host:0x50"])
def test_normalize_base_url_rejects_bad_ports(host):
    with pytest.raises(ConnectionConfigError, match=r"^host: .* has an invalid port \(1-65535\)"):
        normalize_base_url(host)


def test_settings_from_connection_extras(conn, api_key):
    conn(timeout="45", connect_timeout=3, max_retries="5", poll_interval=2.5, wait_timeout=600,
         max_media_bytes="2048")
    settings = MagicVideoHook().settings
    assert settings == ApiSettings(base_url=BASE_URL, api_key=api_key, connect_timeout=3.0, read_timeout=45.0,
                                   max_retries=5, poll_interval=2.5, wait_timeout=600.0, max_media_bytes=2048,
                                   allow_insecure_video_urls=True, reconcile_window=0)
    assert settings.generations_url == GENERATIONS_URL
    assert settings.timeouts == (3.0, 45.0)
    assert api_key not in repr(settings)
    assert "api_key" not in repr(settings)


def test_settings_defaults(magicvideo_conn, api_key):
    magicvideo_conn("")
    settings = MagicVideoHook().settings
    assert settings == ApiSettings(base_url=DEFAULT_BASE_URL, api_key=api_key, allow_insecure_video_urls=True)
    assert (settings.connect_timeout, settings.read_timeout, settings.max_retries, settings.poll_interval,
            settings.wait_timeout, settings.max_media_bytes) == (10.0, 30.0, 3, 15.0, 1000.0, None)
    assert api_key not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [("timeout", "fast"), ("connect_timeout", [1]), ("max_retries", "2.5"), ("max_retries", -1),
     ("poll_interval", {"s": 1}), ("wait_timeout", "-5"), ("max_media_bytes", "10MB")],
)
def test_settings_bad_numbers_name_the_extra(conn, name, value):
    conn(**{name: value})
    with pytest.raises(ConnectionConfigError, match=rf"^extra\.{name}: "):
        _ = MagicVideoHook().settings


def test_settings_empty_extras_use_defaults(conn):
    conn(timeout="", max_media_bytes="", max_retries=None)
    settings = MagicVideoHook().settings
    assert (settings.read_timeout, settings.max_media_bytes, settings.max_retries) == (30.0, None, 3)


def test_settings_from_a_connection_object_with_explicit_extra(api_key):
    from airflow.providers.common.compat.sdk import Connection

    conn = Connection(conn_id="c", conn_type="magicvideo", host="emulator", schema="http", port=8000,
                      password=f" {api_key} ", extra=json.dumps({"timeout": 99}))
    settings = ApiSettings.from_connection(conn, extra={"timeout": 5})
    assert settings.base_url == "http://emulator:8000/v2"
    assert settings.api_key == api_key
    assert settings.read_timeout == 5.0
    missing = Connection(conn_id="c", conn_type="magicvideo", host="emulator")
    with pytest.raises(ConnectionConfigError, match=r"Connection 'c' has no API key") as info:
        ApiSettings.from_connection(missing)
    assert isinstance(info.value, InvalidInputError)


# ================================================================================================ client request ids
def test_make_client_request_id_joins_and_sanitises():
    assert make_client_request_id("dag", None, "", "task", 3) == "dag:task:3"
    assert make_client_request_id("my dag/run #1", "t\u00e9st") == "my-dag-run-1:t-st"
    assert make_client_request_id("--weird--") == "weird"
    assert make_client_request_id("a.b_c:d-e") == "a.b_c:d-e"


def test_make_client_request_id_falls_back_to_a_random_one():
    first, second = make_client_request_id(), make_client_request_id("///")
    for value in (first, second):
        assert re.fullmatch(r"airflow:[0-9a-f]{32}", value)
    assert first != second


def test_make_client_request_id_truncates_long_ids_uniquely():
    head = "dag_" + "x" * 200
    one = make_client_request_id(head, "task_a", "run_1")
    two = make_client_request_id(head, "task_b", "run_1")
    for value in (one, two):
        assert len(value) == 128
        assert re.fullmatch(CLIENT_REQUEST_ID_RE, value)
        assert value.startswith("dag_xxxx")
    assert one != two
    assert one == make_client_request_id(head, "task_a", "run_1")  # deterministic: retries reuse it
    assert len(make_client_request_id("y" * 128)) == 128
    assert make_client_request_id("y" * 128) == "y" * 128
