"""MagicVideoAsyncHook (aiohttp): status, error mapping, retries, and the shared ClientSession per connection."""

from __future__ import annotations

import asyncio
import gc
import re
import warnings

import aiohttp
import pytest

from airflow_provider_magicvideo.exceptions import (
    ApiConnectionError,
    ApiStatusError,
    AuthenticationError,
    ConnectFailedError,
    GenerationNotFoundError,
    InsufficientCreditsError,
    RateLimitError,
    RequestValidationError,
    ServerError,
    UnexpectedResponseError,
)
from airflow_provider_magicvideo.generation import GenerationStatus
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoAsyncHook
from airflow_provider_magicvideo.hooks.transport import connection_error_async
from tests.hooks.support import CLIENT_REQUEST_ID_RE, GENERATIONS_URL, VIDEO_URL, payload

STATUS_URL = re.compile(rf"^{re.escape(GENERATIONS_URL)}\?generation_id=gen-1$")


@pytest.fixture
def async_sleeps() -> list[float]:
    return []


@pytest.fixture
def make_hook(conn, async_sleeps):
    async def fake_sleep(seconds: float) -> None:
        async_sleeps.append(seconds)

    def _make(conn_id: str = "magicvideo_default", **kwargs) -> MagicVideoAsyncHook:
        hook = MagicVideoAsyncHook(conn_id, **kwargs)
        hook.sleep = fake_sleep
        return hook

    return _make


@pytest.fixture(autouse=True)
def _no_shared_sessions_leak(no_shared_session_leak):
    """Every async-hook test must release the shared session it used (see tests/conftest.py)."""


def _requests(mocked, method: str = "GET"):
    return [call for (m, _url), calls in mocked.requests.items() if m == method for call in calls]


# --------------------------------------------------------------------------- status
@pytest.mark.parametrize("status", ["queued", "waiting", "generating", "completed", "error"])
async def test_aget_generation_every_status(make_hook, mocked, status, api_key):
    mocked.get(STATUS_URL, payload=payload(status), headers={"x-inference-id": "inf-1"})
    async with make_hook(client_request_id="dag:task:run:1") as hook:
        generation = await hook.aget_generation("gen-1")
    assert generation.status is GenerationStatus(status)
    assert generation.request_id == "inf-1"
    if status == "completed":
        assert generation.video_url == VIDEO_URL
    if status == "error":
        assert generation.error_name == "RenderError"
    (call,) = _requests(mocked)
    headers = call.kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {api_key}"
    assert headers["X-Client-Request-Id"] == "dag:task:run:1"
    assert call.kwargs["params"] == {"generation_id": "gen-1"}


def test_default_client_request_id(conn):
    hook = MagicVideoAsyncHook()
    assert re.fullmatch(CLIENT_REQUEST_ID_RE, hook.client_request_id)
    assert hook.client_request_id.startswith("airflow:")
    assert MagicVideoAsyncHook(client_request_id="a b").client_request_id == "a-b"


@pytest.mark.parametrize(
    ("status", "error", "calls"),
    [
        (400, RequestValidationError, 1),
        (401, AuthenticationError, 1),
        (403, InsufficientCreditsError, 1),
        (404, GenerationNotFoundError, 1),
        (418, ApiStatusError, 1),
        (429, RateLimitError, 4),
        (500, ServerError, 4),
        (504, ServerError, 4),
    ],
)
async def test_aget_generation_error_mapping(make_hook, mocked, async_sleeps, status, error, calls):
    mocked.get(STATUS_URL, status=status, payload={"message": "no", "requestId": "req-5"}, repeat=True)
    async with make_hook() as hook:
        with pytest.raises(error) as info:
            await hook.aget_generation("gen-1")
    assert type(info.value) is error
    assert info.value.status_code == status
    assert info.value.request_id == "req-5"
    assert info.value.client_request_id == hook.client_request_id
    assert len(_requests(mocked)) == calls
    assert len(async_sleeps) == calls - 1


async def test_retries_with_recorded_async_sleeps(make_hook, mocked, async_sleeps):
    mocked.get(STATUS_URL, status=503, body="unavailable")
    mocked.get(STATUS_URL, status=429, headers={"Retry-After": "4"})
    mocked.get(STATUS_URL, exception=aiohttp.ServerDisconnectedError())
    mocked.get(STATUS_URL, payload=payload("generating"))
    async with make_hook() as hook:
        generation = await hook.aget_generation("gen-1")
    assert generation.status is GenerationStatus.GENERATING
    assert len(_requests(mocked)) == 4
    assert len(async_sleeps) == 3
    assert async_sleeps[1] == 4.0
    assert 0 <= async_sleeps[0] <= 0.5 and 0 <= async_sleeps[2] <= 2.0


async def test_transport_errors_exhausted(make_hook, mocked):
    mocked.get(STATUS_URL, exception=TimeoutError(), repeat=True)
    async with make_hook() as hook:
        with pytest.raises(ApiConnectionError) as info:
            await hook.aget_generation("gen-1")
    assert type(info.value) is ApiConnectionError  # maybe sent, not ConnectFailedError
    assert info.value.client_request_id == hook.client_request_id
    assert len(_requests(mocked)) == 4


async def test_non_json_body(make_hook, mocked):
    mocked.get(STATUS_URL, body="<html>proxy</html>", headers={"x-inference-id": "inf-2"})
    async with make_hook() as hook:
        with pytest.raises(UnexpectedResponseError, match="not JSON") as info:
            await hook.aget_generation("gen-1")
    assert info.value.request_id == "inf-2"


# --------------------------------------------------------------------------- the shared session
def _users() -> dict[str, int]:
    return MagicVideoAsyncHook.pool.stats()["users"]


async def test_async_with_shares_one_session_per_connection(conn, make_hook, mocked):
    conn("magicvideo_other")
    mocked.get(STATUS_URL, payload=payload("queued"), repeat=True)
    hooks = [make_hook() for _ in range(20)]
    for hook in hooks:
        await hook.__aenter__()
    other = make_hook("magicvideo_other")
    await other.__aenter__()
    try:
        assert MagicVideoAsyncHook.pool.stats() == {
            "sessions": 2, "users": {"magicvideo_default": 20, "magicvideo_other": 1}}
        results = await asyncio.gather(*(hook.aget_generation("gen-1") for hook in hooks))
        assert {r.status for r in results} == {GenerationStatus.QUEUED}
        assert _users()["magicvideo_default"] == 20  # calls inside ``async with`` take no extra lease
        for hook in hooks[:-1]:
            await hook.__aexit__(None, None, None)
        assert _users() == {"magicvideo_default": 1, "magicvideo_other": 1}
        await hooks[-1].__aexit__(None, None, None)  # the last user closes it
        assert _users() == {"magicvideo_other": 1}
    finally:
        await other.__aexit__(None, None, None)
    assert MagicVideoAsyncHook.pool.stats() == {"sessions": 0, "users": {}}


async def test_request_timeouts_and_headers_come_from_the_connection(conn, make_hook, mocked, api_key):
    conn(timeout=12, connect_timeout=4)
    mocked.get(STATUS_URL, payload=payload("queued"))
    async with make_hook() as hook:
        await hook.aget_generation("gen-1")
    (call,) = _requests(mocked)
    assert call.kwargs["timeout"].sock_read == 12
    assert call.kwargs["timeout"].sock_connect == 4
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {api_key}"


async def test_standalone_call_opens_and_closes_its_session(make_hook, mocked):
    mocked.get(STATUS_URL, payload=payload("waiting"))
    hook = make_hook()
    assert (await hook.aget_generation("gen-1")).status is GenerationStatus.WAITING
    assert MagicVideoAsyncHook.pool.stats()["sessions"] == 0


async def test_standalone_call_closes_its_session_on_error(make_hook, mocked):
    mocked.get(STATUS_URL, status=401)
    hook = make_hook()
    with pytest.raises(AuthenticationError):
        await hook.aget_generation("gen-1")
    assert MagicVideoAsyncHook.pool.stats()["sessions"] == 0


def test_no_unclosed_session_warning(make_hook, mocked, caplog):
    mocked.get(STATUS_URL, payload=payload("queued"), repeat=True)

    async def scenario():
        async with make_hook() as one, make_hook() as two:
            await one.aget_generation("gen-1")
            await two.aget_generation("gen-1")
        await make_hook().aget_generation("gen-1")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(scenario())
        gc.collect()
    texts = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if "Unclosed" in t], texts


async def test_aexit_without_aenter_is_harmless(make_hook):
    await make_hook().__aexit__(None, None, None)


# --------------------------------------------------------------------------- transport classification
def _connector_error() -> aiohttp.ClientConnectorError:
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("api.magic.test", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


@pytest.mark.parametrize(
    ("exc", "sent"),
    [
        (_connector_error(), False),
        (aiohttp.ConnectionTimeoutError(), False),
        (aiohttp.ServerDisconnectedError(), True),
        (aiohttp.SocketTimeoutError(), True),
        (aiohttp.ClientPayloadError("truncated"), True),
        (TimeoutError(), True),
    ],
)
def test_transport_classification(exc, sent):
    err = connection_error_async(exc, "status request")
    assert isinstance(err, ConnectFailedError) is not sent
    assert isinstance(err, ApiConnectionError)
    assert type(exc).__name__ in str(err)
    assert ("could not connect" if not sent else "no answer") in str(err)


async def test_connector_error_is_retried_for_status(make_hook, mocked, async_sleeps):
    mocked.get(STATUS_URL, exception=_connector_error())
    mocked.get(STATUS_URL, payload=payload("queued"))
    async with make_hook() as hook:
        assert (await hook.aget_generation("gen-1")).status is GenerationStatus.QUEUED
    assert len(async_sleeps) == 1


async def test_extras_without_async_helper_in_common_compat(conn, make_hook, mocked, monkeypatch):
    import airflow.providers.common.compat.connection as compat_connection

    monkeypatch.delattr(compat_connection, "get_async_extra_dejson", raising=False)
    conn(timeout=4)
    mocked.get(STATUS_URL, payload=payload("queued"))
    await make_hook().aget_generation("gen-1")
    (call,) = _requests(mocked)
    assert call.kwargs["timeout"].sock_read == 4
