"""Fixtures for the trigger tests: a fast connection, no leaked shared sessions."""

from __future__ import annotations

import logging

import pytest

TRIGGER_LOGGER = "tests.magicvideo.trigger"


@pytest.fixture
def fake_api_conn(magicvideo_conn):
    """``magicvideo_default`` on a fake host; no HTTP-level retries so one poll is one request."""
    from tests.hooks.support import BASE_URL

    return magicvideo_conn(BASE_URL, max_retries=0)


@pytest.fixture
def trigger_log() -> logging.Logger:
    logger = logging.getLogger(TRIGGER_LOGGER)
    logger.setLevel(logging.DEBUG)
    return logger


@pytest.fixture(autouse=True)
def _no_shared_sessions_leak():
    """Every trigger must release the pooled session it used."""
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoAsyncHook

    yield
    stats = MagicVideoAsyncHook.pool.stats()
    assert stats["sessions"] == 0, f"pooled sessions left open: {stats}"


class FakeClock:
    """The trigger's clock and sleep: sleeping advances ``now`` instantly (and yields to the loop once)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        import asyncio

        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger

    clock = FakeClock()
    monkeypatch.setattr(MagicVideoTrigger, "clock", staticmethod(clock.time))
    monkeypatch.setattr(MagicVideoTrigger, "sleep", staticmethod(clock.sleep))
    return clock
