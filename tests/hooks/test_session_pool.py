"""SessionPool: one aiohttp session per (loop, connection), closed by its last user; settings re-read after TTL."""

from __future__ import annotations

import re

import pytest

from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoAsyncHook
from airflow_provider_magicvideo.hooks.session_pool import SessionPool
from airflow_provider_magicvideo.hooks.settings import ApiSettings
from tests.hooks.support import BASE_URL, GENERATIONS_URL, payload

STATUS_URL = re.compile(rf"^{re.escape(GENERATIONS_URL)}\?generation_id=gen-1$")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Loader:
    def __init__(self, key: str = "sk-first-key-0123456789") -> None:
        self.key = key
        self.calls = 0

    async def __call__(self) -> ApiSettings:
        self.calls += 1
        return ApiSettings(base_url=BASE_URL, api_key=self.key)


async def test_one_session_per_connection_closed_by_the_last_user():
    pool = SessionPool()
    load_a, load_b = Loader(), Loader()
    first = await pool.acquire("a", load_a)
    second = await pool.acquire("a", load_a)
    other = await pool.acquire("b", load_b)
    assert first is second and first.session is second.session
    assert other.session is not first.session
    assert load_a.calls == 1  # shared: the connection is read once
    assert pool.stats() == {"sessions": 2, "users": {"a": 2, "b": 1}}
    await pool.release(first)
    assert not first.session.closed
    assert pool.stats()["users"] == {"a": 1, "b": 1}
    await pool.release(second)
    assert first.session.closed
    await pool.release(other)
    assert pool.stats() == {"sessions": 0, "users": {}}


async def test_a_new_session_after_the_last_user_left_and_a_closed_one_is_replaced():
    pool = SessionPool()
    lease = await pool.acquire("a", Loader())
    await pool.release(lease)
    again = await pool.acquire("a", Loader())
    assert again.session is not lease.session and not again.session.closed
    await again.session.close()  # closed behind the pool's back
    fresh = await pool.acquire("a", Loader())
    assert fresh is not again and not fresh.session.closed
    await pool.release(fresh)
    await pool.close_all()
    assert pool.stats()["sessions"] == 0


async def test_settings_are_refreshed_after_the_ttl():
    clock = Clock()
    pool = SessionPool(settings_ttl=300, clock=clock)
    load = Loader()
    lease = await pool.acquire("a", load)
    try:
        load.key = "sk-rotated-key-9876543210"
        clock.now = 299
        assert (await pool.refresh(lease, load)).api_key == "sk-first-key-0123456789"
        clock.now = 300
        assert (await pool.refresh(lease, load)).api_key == "sk-rotated-key-9876543210"
        assert load.calls == 2
    finally:
        await pool.release(lease)


async def test_the_async_hook_sends_a_rotated_key_after_the_ttl(magicvideo_conn, mocked, no_shared_session_leak,
                                                                monkeypatch):
    import json

    clock = Clock()
    monkeypatch.setattr(MagicVideoAsyncHook, "pool", SessionPool(settings_ttl=60, clock=clock))
    magicvideo_conn(BASE_URL)
    mocked.get(STATUS_URL, payload=payload("queued"), repeat=True)
    async with MagicVideoAsyncHook() as hook:
        await hook.aget_generation("gen-1")
        monkeypatch.setenv("AIRFLOW_CONN_MAGICVIDEO_DEFAULT", json.dumps(
            {"conn_type": "magicvideo", "host": BASE_URL, "password": "sk-rotated-key-9876543210"}))
        await hook.aget_generation("gen-1")  # inside the TTL: the cached key
        clock.now = 61
        await hook.aget_generation("gen-1")
    sent = [call.kwargs["headers"]["Authorization"] for calls in mocked.requests.values() for call in calls]
    assert sent[:2] == [sent[0]] * 2 and sent[0] != "Bearer sk-rotated-key-9876543210"
    assert sent[2] == "Bearer sk-rotated-key-9876543210"


@pytest.mark.parametrize("users", [1, 3])
async def test_stats_count_users(users):
    pool = SessionPool()
    leases = [await pool.acquire("c", Loader()) for _ in range(users)]
    assert pool.stats() == {"sessions": 1, "users": {"c": users}}
    for lease in leases:
        await pool.release(lease)
    assert pool.stats() == {"sessions": 0, "users": {}}
