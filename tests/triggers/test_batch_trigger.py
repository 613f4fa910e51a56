"""MagicVideoBatchTrigger: plain serialization, one event for many generations, per-id outcomes, the deadline,
bounded polls, one shared session. Mocked HTTP on a fake clock: nothing waits in real time."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from airflow_provider_magicvideo.exceptions import InvalidInputError
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoAsyncHook
from airflow_provider_magicvideo.triggers.batch import MagicVideoBatchTrigger
from tests.hooks.support import GENERATIONS_URL, payload
from tests.triggers.conftest import TRIGGER_LOGGER, FakeClock

CLIENT_ID = "airflow:batch_dag:render_chunk:manual__2025:0"


@pytest.fixture
def batch_clock(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(MagicVideoBatchTrigger, "clock", staticmethod(clock.time))
    monkeypatch.setattr(MagicVideoBatchTrigger, "sleep", staticmethod(clock.sleep))
    return clock


def status_url(generation_id: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(GENERATIONS_URL)}\?generation_id={generation_id}$")


def make_trigger(ids: list[str], seconds: float = 600, **kwargs) -> MagicVideoBatchTrigger:
    kwargs.setdefault("poll_interval", 2)
    trigger = MagicVideoBatchTrigger(ids, MagicVideoBatchTrigger.clock() + seconds, **kwargs)
    import logging

    trigger._log = logging.getLogger(TRIGGER_LOGGER)
    return trigger


async def events_of(trigger: MagicVideoBatchTrigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


def test_serialize_round_trip_is_plain_and_secret_free(api_key, fake_api_conn):
    trigger = MagicVideoBatchTrigger(["gen-1", "gen-2"], 1_800_000_600, conn_id=fake_api_conn, poll_interval=5,
                                     client_request_id=CLIENT_ID, submitted_at={"gen-1": 1_800_000_000.5},
                                     max_concurrent_polls=7)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_magicvideo.triggers.batch.MagicVideoBatchTrigger"
    text = json.dumps(kwargs)
    assert api_key not in text and "http" not in text.lower()
    assert kwargs["end_time"] == "2027-01-15T08:10:00+00:00"  # absolute: never recomputed on a restart
    rebuilt = MagicVideoBatchTrigger(**json.loads(text))
    assert rebuilt.serialize() == (classpath, kwargs)


@pytest.mark.parametrize("ids", ["gen-1", [""], [None]])
def test_generation_ids_must_be_a_list_of_ids(ids):
    with pytest.raises(InvalidInputError, match="generation_ids"):
        MagicVideoBatchTrigger(ids, 1_800_000_600)


async def test_one_event_with_every_generations_outcome(mocked, fake_api_conn, batch_clock):
    mocked.get(status_url("gen-1"), payload=payload("queued", "gen-1"))
    mocked.get(status_url("gen-1"), payload=payload("completed", "gen-1", meta={"usage": {"credits_used": 7}}))
    mocked.get(status_url("gen-2"), payload=payload("error", "gen-2"))
    for _ in range(3):
        mocked.get(status_url("gen-3"), payload=payload("generating", "gen-3"))
    mocked.get(status_url("gen-3"), payload=payload("completed", "gen-3"))
    [event] = await events_of(make_trigger(["gen-1", "gen-2", "gen-3"], client_request_id=CLIENT_ID))
    assert event["status"] == "done"
    outcomes = event["generations"]
    assert outcomes["gen-1"] == {"status": "completed", "credits_used": 7}
    assert outcomes["gen-3"]["status"] == "completed"
    assert outcomes["gen-2"]["status"] == "error" and outcomes["gen-2"]["error"] == "GenerationFailedError"
    assert (outcomes["gen-2"]["error_name"], outcomes["gen-2"]["error_message"]) == (
        "RenderError", "the template could not be rendered")
    assert event["polls"] == 7
    assert batch_clock.sleeps == [2, 2, 2]  # one schedule for all: each sleep serves every pending id
    assert json.loads(json.dumps(event)) == event


async def test_a_generation_still_pending_at_the_deadline_times_out_alone(mocked, fake_api_conn, batch_clock):
    mocked.get(status_url("gen-1"), payload=payload("completed", "gen-1"))
    mocked.get(status_url("gen-2"), payload=payload("generating", "gen-2"), repeat=True)
    [event] = await events_of(make_trigger(["gen-1", "gen-2"], seconds=10))
    assert event["generations"]["gen-1"]["status"] == "completed"
    late = event["generations"]["gen-2"]
    assert late["error"] == "GenerationTimeoutError" and late["task_retry"] is True
    assert sum(batch_clock.sleeps) == pytest.approx(10)


async def test_polls_are_bounded_and_share_one_session(mocked, fake_api_conn, batch_clock, monkeypatch):
    ids = [f"gen-{i}" for i in range(12)]
    for gid in ids:
        mocked.get(status_url(gid), payload=payload("completed", gid))
    in_flight, peak, sessions = 0, 0, set()
    real = MagicVideoAsyncHook.aget_generation

    async def counting(hook, generation_id):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        sessions.add(id(hook._lease.session))
        await asyncio.sleep(0)
        try:
            return await real(hook, generation_id)
        finally:
            in_flight -= 1

    monkeypatch.setattr(MagicVideoAsyncHook, "aget_generation", counting)
    [event] = await events_of(make_trigger(ids, max_concurrent_polls=3))
    assert {o["status"] for o in event["generations"].values()} == {"completed"}
    assert peak == 3
    assert len(sessions) == 1
