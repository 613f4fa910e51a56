"""Issue 16, the hook layer: connection values validated before any request, "never sent" failures resent,
untrusted numbers parsed defensively, the API key never echoed back, odd answers treated as failed polls.

Each test here failed on the code before the redesign (f66ac56) and passes now.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
import requests

from airflow_provider_magicvideo.exceptions import ConnectionConfigError, MagicVideoError
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoAsyncHook, MagicVideoHook
from tests.conftest import TEST_API_KEY
from tests.hooks.support import BASE_URL, GENERATIONS_URL, payload

IMAGE_URL = "https://example.com/a.png"
SUBMITTED = {"id": "gen-1", "status": "queued"}
STATUS_URL = re.compile(rf"^{re.escape(GENERATIONS_URL)}\?generation_id=gen-1$")


@pytest.fixture
def conn(magicvideo_conn):
    def _set(**extra) -> str:
        return magicvideo_conn(BASE_URL, **{"max_retries": 1, **extra})

    _set()
    return _set


def _hook(**kwargs) -> MagicVideoHook:
    hook = MagicVideoHook(**kwargs)
    hook.sleep = lambda seconds: None
    return hook


def _set_raw_conn(monkeypatch, *, host: str = BASE_URL, password: str = TEST_API_KEY, **extra) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MAGICVIDEO_DEFAULT", json.dumps(
        {"conn_type": "magicvideo", "host": host, "password": password, "extra": extra}))


def _all_text(exc: BaseException) -> str:
    """Everything an error shows: str, repr, args, attributes, along the whole cause/context chain."""
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


# ====================================================================== item 1/6/8: extras validated up front
@pytest.mark.parametrize(
    ("name", "value"),
    [("timeout", "inf"), ("timeout", 0), ("timeout", "nan"), ("timeout", 1e300), ("timeout", -5),
     ("connect_timeout", "Infinity"), ("poll_interval", 0), ("poll_interval", -1), ("wait_timeout", "nan"),
     ("max_retries", 1e300)],
)
def test_bad_numeric_extra_is_a_config_error_before_any_request(conn, requests_mock, name, value):
    conn(**{name: value})
    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    with pytest.raises(ConnectionConfigError, match=rf"^extra\.{name}: "):
        _hook().submit(image=IMAGE_URL)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("key", [TEST_API_KEY + "\nX-Evil: 1", TEST_API_KEY[:10] + "\x07" + TEST_API_KEY[10:],
                                 TEST_API_KEY + "\u20ac", "sk-\u043a\u043b\u044e\u0447-1234567890"])
def test_unsendable_key_is_a_config_error_that_never_shows_the_key(monkeypatch, requests_mock, key):
    _set_raw_conn(monkeypatch, password=key)
    requests_mock.post(GENERATIONS_URL, json=SUBMITTED)
    with pytest.raises(ConnectionConfigError, match=r"^password: ") as info:
        _hook().submit(image=IMAGE_URL)
    assert requests_mock.call_count == 0
    text = _all_text(info.value)
    assert key.strip() not in text
    assert TEST_API_KEY[:12] not in text and "\u043a\u043b\u044e\u0447" not in text


@pytest.mark.parametrize(("host", "match"), [
    ("https://user:pw@api.magic.test/v2", "contains a user name or password"),
    ("https://api.magic.test:99999/v2", "invalid port"),
])
def test_bad_host_is_refused_before_any_request(monkeypatch, requests_mock, host, match):
    _set_raw_conn(monkeypatch, host=host)
    requests_mock.post(re.compile(".*"), json=SUBMITTED)
    with pytest.raises(ConnectionConfigError, match=match) as info:
        _hook().submit(image=IMAGE_URL)
    assert requests_mock.call_count == 0
    assert "pw" not in str(info.value).replace("password", "")


@pytest.mark.parametrize("interval", [0, -1, 0.01, float("nan")])
def test_wait_poll_interval_is_validated_before_any_request(conn, requests_mock, interval):
    from airflow_provider_magicvideo.exceptions import InvalidInputError

    requests_mock.get(GENERATIONS_URL, json=payload("queued"))
    with pytest.raises(InvalidInputError, match=r"^poll_interval: "):
        _hook().wait_for_generation("gen-1", poll_interval=interval, timeout=10)
    assert requests_mock.call_count == 0


# ====================================================================== item 2: never sent → resent
@pytest.mark.parametrize("exc", [
    requests.exceptions.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number"),
    requests.exceptions.InvalidURL("Failed to parse: https://api.magic.test:99999"),
    requests.exceptions.InvalidHeader("Invalid leading whitespace in header value"),
])
def test_tls_and_unusable_url_or_header_failures_never_left(exc):
    from airflow_provider_magicvideo.exceptions import ConnectFailedError, Resend
    from airflow_provider_magicvideo.hooks.retry import may_resend
    from airflow_provider_magicvideo.hooks.transport import connection_error_sync

    error = connection_error_sync(exc, "submit", "crid")
    assert type(error) is ConnectFailedError
    assert error.disposition.resend is Resend.ALWAYS
    assert may_resend("POST", error)
    assert "wrong version" not in str(error) and "99999" not in str(error)  # only the library error's type


def test_tls_failure_on_submit_is_resent_not_ambiguous(conn, requests_mock):
    requests_mock.post(GENERATIONS_URL, [{"exc": requests.exceptions.SSLError("handshake")}, {"json": SUBMITTED}])
    assert _hook().submit(image=IMAGE_URL).id == "gen-1"
    assert requests_mock.call_count == 2


# ====================================================================== item 1b: untrusted numbers
@pytest.fixture
def fresh_warnings():
    from airflow_provider_magicvideo import generation

    generation._warned_unknown.clear()  # "warned once per process": start this test with a clean slate
    yield
    generation._warned_unknown.clear()


@pytest.mark.parametrize("where", ["body", "header"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "abc", "-5", "1e999"])
def test_odd_credits_become_none_with_one_warning(conn, requests_mock, caplog, fresh_warnings, where, value):
    caplog.set_level(logging.WARNING, logger="airflow_provider_magicvideo.generation")
    if where == "body":
        # NaN/Infinity are what Python's own json module writes for float('nan')/float('inf').
        text = '{"id": "gen-1", "status": "queued", "meta": {"usage": {"credits_used": %s}}}' % (
            value if value in ("NaN", "Infinity", "-Infinity", "-5", "1e999") else json.dumps(value))
        requests_mock.post(GENERATIONS_URL, text=text)
    else:
        requests_mock.post(GENERATIONS_URL, json=SUBMITTED, headers={"x-aimlapi-credits-used": value})
    recorded: list = []
    generation = _hook().submit(image=IMAGE_URL, on_created=lambda gid, credits: recorded.append((gid, credits)))
    assert generation.id == "gen-1"
    assert generation.credits_used is None
    assert recorded == [("gen-1", None)]
    warnings = [r for r in caplog.records if r.name == "airflow_provider_magicvideo.generation"]
    assert len(warnings) == 1 and "credits_used" in warnings[0].getMessage()


# ====================================================================== item 3: the key echoed by the server
ECHOES = [
    ("GET", {"status_code": 401, "json": {"message": f"Invalid key Bearer {TEST_API_KEY}"}}),
    ("POST", {"status_code": 401, "json": {"message": f"Invalid key Bearer {TEST_API_KEY}"}}),
    ("POST", {"status_code": 400, "json": {"message": "bad", "meta": [
        {"path": ["authorization"], "message": f"unexpected Bearer {TEST_API_KEY}"}, f"header {TEST_API_KEY}"]}}),
    ("GET", {"status_code": 502, "text": f"<html>upstream rejected Authorization: Bearer {TEST_API_KEY}</html>"}),
    ("POST", {"status_code": 502, "text": f"<html>upstream rejected Authorization: Bearer {TEST_API_KEY}</html>"}),
    ("POST", {"status_code": 200, "text": f"<html>ok {TEST_API_KEY}</html>"}),
    ("GET", {"status_code": 200, "text": f"<html>ok {TEST_API_KEY}</html>"}),
]


@pytest.mark.parametrize(("method", "answer"), ECHOES)
def test_key_echoed_by_the_server_appears_nowhere_sync(conn, requests_mock, caplog, method, answer):
    caplog.set_level(logging.DEBUG)
    requests_mock.register_uri(method, GENERATIONS_URL, **answer)
    hook = _hook()
    with pytest.raises(MagicVideoError) as info:
        hook.get_generation("gen-1") if method == "GET" else hook.submit(image=IMAGE_URL)
    assert requests_mock.last_request.headers["Authorization"] == f"Bearer {TEST_API_KEY}"  # it was on the wire
    assert TEST_API_KEY not in _all_text(info.value)
    assert TEST_API_KEY not in "\n".join(r.getMessage() for r in caplog.records)
    assert TEST_API_KEY not in repr(vars(hook))


@pytest.mark.parametrize(("status", "body"), [
    (401, json.dumps({"message": f"Invalid key Bearer {TEST_API_KEY}"})),
    (400, json.dumps({"message": "bad", "meta": [{"path": ["x"], "message": f"Bearer {TEST_API_KEY}"}]})),
    (502, f"<html>Authorization: Bearer {TEST_API_KEY}</html>"),
    (200, f"<html>{TEST_API_KEY}</html>"),
])
async def test_key_echoed_by_the_server_appears_nowhere_async(conn, mocked, caplog, no_shared_session_leak,
                                                              status, body):
    caplog.set_level(logging.DEBUG)
    mocked.get(STATUS_URL, status=status, body=body, repeat=True)

    async def no_sleep(seconds: float) -> None:
        return None

    hook = MagicVideoAsyncHook()
    hook.sleep = no_sleep
    async with hook:
        with pytest.raises(MagicVideoError) as info:
            await hook.aget_generation("gen-1")
        assert TEST_API_KEY not in repr(vars(hook))
    assert TEST_API_KEY not in _all_text(info.value)
    assert TEST_API_KEY not in "\n".join(r.getMessage() for r in caplog.records)
    assert TEST_API_KEY not in repr(vars(hook))


# ====================================================================== item 9: odd answers
def test_status_answer_with_another_generations_id_is_a_failed_poll(conn, requests_mock):
    from airflow_provider_magicvideo.exceptions import UnexpectedResponseError

    requests_mock.get(GENERATIONS_URL, json=payload("completed", generation_id="gen-OTHER"))
    with pytest.raises(UnexpectedResponseError, match="another generation's id") as info:
        _hook().get_generation("gen-1")
    assert info.value.disposition.transient


def test_404_on_submit_names_the_base_url_problem(conn, requests_mock):
    requests_mock.post(GENERATIONS_URL, status_code=404, json={"message": "Cannot POST /v2/video/generations"})
    with pytest.raises(MagicVideoError, match=r"check the connection's host / base URL"):
        _hook().submit(image=IMAGE_URL)
    assert requests_mock.call_count == 1


def test_404_just_after_the_submit_is_tolerated_by_the_wait():
    from airflow_provider_magicvideo.exceptions import GenerationNotFoundError
    from airflow_provider_magicvideo.hooks.polling import NOT_FOUND_GRACE_SECONDS, Wait

    now = [1_000.0]
    wait = Wait("gen-1", deadline=10_000.0, poll_interval=5, max_consecutive_failures=5, log=logging.getLogger("t"),
                submitted_at=1_000.0, clock=lambda: now[0])
    not_found = GenerationNotFoundError("HTTP 404", status_code=404)
    assert NOT_FOUND_GRACE_SECONDS == 30
    now[0] = 1_029.0
    assert wait.after(not_found) == 5  # inside the grace window: a failed poll, tolerated
    now[0] = 1_031.0
    with pytest.raises(GenerationNotFoundError):
        wait.after(not_found)


# ====================================================================== item 8: nonsense signing dates
@pytest.mark.parametrize("query", ["X-Amz-Date=99999999T999999Z&X-Amz-Expires=600",
                                   "X-Amz-Date=20250102T030405Z&X-Amz-Expires=" + "9" * 400,
                                   "X-Amz-Date=99991231T235959Z&X-Amz-Expires=604800",
                                   "X-Amz-Date=20250102T030405Z&X-Amz-Expires=-600"])
def test_url_expires_at_never_raises(query):
    from airflow_provider_magicvideo.generation import Generation

    gen = Generation.from_payload({"id": "g", "status": "completed", "video": {"url": f"https://cdn.test/v.mp4?{query}"}})
    assert gen.url_expires_at is not None
    assert gen.result()["url_expires_at"]
