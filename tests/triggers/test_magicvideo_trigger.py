"""MagicVideoTrigger: serialization, every status sequence, deadlines, failure tolerance, logs, shared session."""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import logging
import re
import time
import warnings

import pytest

from airflow_provider_magicvideo.emulator.testing import submit
from airflow_provider_magicvideo.exceptions import InvalidInputError
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoAsyncHook
from airflow_provider_magicvideo.hooks.polling import iso
from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger, deadline_after
from tests.hooks.support import GENERATIONS_URL, VIDEO_URL, payload
from tests.triggers.conftest import TRIGGER_LOGGER

# Every mocked-HTTP test runs on the fake clock: sleeping advances it, nothing waits in real time.
pytestmark = pytest.mark.usefixtures("fake_clock")

STATUS_URL = re.compile(rf"^{re.escape(GENERATIONS_URL)}\?generation_id=gen-1$")
CLIENT_ID = "airflow:dag_1:submit:manual__2025:3"


def make_trigger(end_time: str | float | None = None, **kwargs) -> MagicVideoTrigger:
    kwargs.setdefault("poll_interval", 1)
    if end_time is None:
        end_time = MagicVideoTrigger.clock() + 600
    trigger = MagicVideoTrigger("gen-1", end_time, **kwargs)
    trigger._log = logging.getLogger(TRIGGER_LOGGER)
    return trigger


async def run_all(trigger: MagicVideoTrigger) -> list[dict]:
    """Iterate the whole generator (so a second event would be seen) and return the payloads."""
    return [event.payload async for event in trigger.run()]


def rebuild(trigger: MagicVideoTrigger) -> MagicVideoTrigger:
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls(**json.loads(json.dumps(kwargs)))  # what the trigger table stores: JSON


def get_calls(mocked) -> list:
    return [call for (method, _url), calls in mocked.requests.items() if method == "GET" for call in calls]


# --------------------------------------------------------------------------- serialization
def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def test_serialize_round_trip_is_plain_and_secret_free(api_key, fake_api_conn):
    trigger = MagicVideoTrigger("gen-1", deadline_after(120), conn_id=fake_api_conn, poll_interval=7,
                                max_consecutive_poll_failures=4, client_request_id=CLIENT_ID,
                                submitted_at=1_800_000_000.5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_magicvideo.triggers.magicvideo.MagicVideoTrigger"
    assert _plain(kwargs)
    assert kwargs["max_consecutive_poll_failures"] == 4
    assert kwargs["submitted_at"] == 1_800_000_000.5
    text = json.dumps(kwargs)
    assert api_key not in text
    assert "http" not in text.lower()
    rebuilt = rebuild(trigger)
    assert type(rebuilt) is MagicVideoTrigger
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["end_time"] == trigger.end_time  # absolute: never recomputed


@pytest.mark.parametrize("interval", [0, -1, 0.5, "nan"])
def test_poll_interval_below_the_minimum_is_refused(interval):
    with pytest.raises(InvalidInputError, match="poll_interval"):
        MagicVideoTrigger("gen-1", deadline_after(60), poll_interval=interval)


@pytest.mark.parametrize("end_time", ["tomorrow", float("nan"), None])
def test_an_unusable_end_time_is_refused(end_time):
    with pytest.raises(InvalidInputError, match="end_time"):
        MagicVideoTrigger("gen-1", end_time)
    with pytest.raises(InvalidInputError, match="end_time"):  # only a missing one may be left to Airflow
        MagicVideoTrigger("gen-1", end_time or "tomorrow", deadline_by_airflow=True)


def test_no_deadline_of_its_own_only_when_airflow_bounds_the_wait():
    trigger = MagicVideoTrigger("gen-1", None, deadline_by_airflow=True)
    _classpath, kwargs = trigger.serialize()
    assert kwargs["end_time"] is None and kwargs["deadline_by_airflow"] is True
    assert MagicVideoTrigger(**kwargs).serialize() == trigger.serialize()
    # Any other trigger serializes as before (triggers stored by an earlier version keep working).
    assert "deadline_by_airflow" not in MagicVideoTrigger("gen-1", deadline_after(60)).serialize()[1]


# --------------------------------------------------------------------------- status sequences
async def test_full_sequence_yields_one_success_event(mocked, fake_api_conn, fake_clock):
    for status in ("queued", "waiting", "active", "generating"):
        mocked.get(STATUS_URL, payload=payload(status))
    mocked.get(STATUS_URL, payload=payload("completed", meta={"usage": {"credits_used": 1_050_000}}))
    events = await run_all(make_trigger(client_request_id=CLIENT_ID, poll_interval=3))
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "success"
    assert event["generation_id"] == "gen-1"
    result = event["result"]
    assert result["video_url"] == VIDEO_URL
    assert result["url_expires_at"] == "2025-01-02T03:14:05+00:00"  # X-Amz-Date + X-Amz-Expires
    assert result["credits_used"] == 1_050_000
    assert event["polls"] == 5
    assert fake_clock.sleeps == [3, 3, 3, 3]  # one poll interval between polls
    calls = get_calls(mocked)
    assert len(calls) == 5
    assert {call.kwargs["headers"]["X-Client-Request-Id"] for call in calls} == {CLIENT_ID}


async def test_error_status_yields_a_final_error_event_naming_the_api_error(mocked, fake_api_conn):
    mocked.get(STATUS_URL, payload=payload("generating"))
    mocked.get(STATUS_URL, payload=payload("error", error={"name": "RenderError", "message": "face not found"}))
    events = await run_all(make_trigger())
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "error"
    assert event["generation_id"] == "gen-1"
    assert event["error"] == "GenerationFailedError"
    assert event["task_retry"] is False
    assert "RenderError" in event["message"]
    assert "face not found" in event["message"]


async def test_unknown_status_is_pending_then_completed(mocked, fake_api_conn):
    mocked.get(STATUS_URL, payload=payload("processing"))
    mocked.get(STATUS_URL, payload=payload("processing"))
    mocked.get(STATUS_URL, payload=payload("completed"))
    events = await run_all(make_trigger())
    assert [e["status"] for e in events] == ["success"]
    assert events[0]["polls"] == 3


# --------------------------------------------------------------------------- deadlines
async def test_end_time_in_the_past_polls_once_then_times_out(mocked, fake_api_conn, fake_clock):
    mocked.get(STATUS_URL, payload=payload("generating"), repeat=True)
    events = await run_all(make_trigger(end_time=fake_clock.now - 5))
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "error"
    assert event["error"] == "GenerationTimeoutError"
    assert event["task_retry"] is True  # a retry reconnects to the same generation
    assert "last status: generating" in event["message"]
    assert "MagicVideoSensor(generation_id='gen-1')" in event["message"]
    assert event["polls"] == 1
    assert len(get_calls(mocked)) == 1


async def test_iso_end_time_is_accepted(mocked, fake_api_conn, fake_clock):
    mocked.get(STATUS_URL, payload=payload("queued"), repeat=True)
    events = await run_all(make_trigger(end_time=iso(fake_clock.now - 1)))
    assert [e["error"] for e in events] == ["GenerationTimeoutError"]


async def test_the_last_sleep_is_cut_to_the_deadline(mocked, fake_api_conn, fake_clock):
    mocked.get(STATUS_URL, payload=payload("generating"), repeat=True)
    deadline = fake_clock.now + 25
    events = await run_all(make_trigger(end_time=deadline, poll_interval=10))
    assert fake_clock.sleeps == [10, 10, 5]
    assert fake_clock.now == deadline
    assert [e["error"] for e in events] == ["GenerationTimeoutError"]
    assert events[0]["polls"] == 4


async def test_rebuilt_trigger_keeps_the_original_deadline(mocked, fake_api_conn, fake_clock, monkeypatch):
    """A triggerer restart rebuilds the trigger from its kwargs: the wait must not start over."""
    mocked.get(STATUS_URL, payload=payload("generating"), repeat=True)
    deadline = fake_clock.now + 100
    original = make_trigger(end_time=deadline, poll_interval=10)
    sleep = fake_clock.sleep

    async def die_in_the_third_sleep(seconds: float) -> None:  # the triggerer is killed mid-wait
        await sleep(seconds)
        if len(fake_clock.sleeps) == 3:
            raise asyncio.CancelledError

    monkeypatch.setattr(MagicVideoTrigger, "sleep", staticmethod(die_in_the_third_sleep))
    with pytest.raises(asyncio.CancelledError):
        await run_all(original)
    monkeypatch.setattr(MagicVideoTrigger, "sleep", staticmethod(sleep))
    assert len(get_calls(mocked)) == 3
    assert fake_clock.now == deadline - 70

    rebuilt = rebuild(original)
    rebuilt._log = original._log
    assert rebuilt.end_time == original.end_time
    fake_clock.sleeps.clear()
    events = await run_all(rebuilt)
    assert [e["error"] for e in events] == ["GenerationTimeoutError"]
    assert fake_clock.sleeps == [10] * 7  # only what was left of the original wait
    assert fake_clock.now == deadline
    assert str(original.end_time) in events[0]["message"]


# --------------------------------------------------------------------------- failed polls
async def test_tolerated_failed_polls_then_success(mocked, fake_api_conn, fake_clock):
    mocked.get(STATUS_URL, status=500, body="upstream broke")
    mocked.get(STATUS_URL, status=200, body='{"id": "gen-1", "status": "gener')  # truncated JSON
    mocked.get(STATUS_URL, status=503, body="")
    mocked.get(STATUS_URL, payload=payload("completed"))
    events = await run_all(make_trigger(max_consecutive_poll_failures=3, poll_interval=2))
    assert [e["status"] for e in events] == ["success"]
    assert events[0]["polls"] == 4
    assert len(get_calls(mocked)) == 4
    assert fake_clock.sleeps == [2, 4, 8]  # exponential backoff while polls fail


async def test_one_failed_poll_too_many_is_a_retryable_error_event(mocked, fake_api_conn):
    for _ in range(3):
        mocked.get(STATUS_URL, status=502, body="bad gateway")
    mocked.get(STATUS_URL, status=200, body="<html>not json</html>")
    mocked.get(STATUS_URL, payload=payload("completed"))  # must never be reached
    events = await run_all(make_trigger(max_consecutive_poll_failures=3))
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "error"
    assert event["polls"] == 4
    assert "not JSON" in event["message"]
    # Transient failures leave task retries to Airflow.
    assert event["task_retry"] is True
    assert len(get_calls(mocked)) == 4


async def test_failures_must_be_consecutive(mocked, fake_api_conn):
    for status in (500, None, 500, None, 500):
        if status:
            mocked.get(STATUS_URL, status=status, body="")
        else:
            mocked.get(STATUS_URL, payload=payload("generating"))
    mocked.get(STATUS_URL, payload=payload("completed"))
    events = await run_all(make_trigger(max_consecutive_poll_failures=1))
    assert [e["status"] for e in events] == ["success"]


async def test_401_is_an_immediate_final_error_event(mocked, fake_api_conn, api_key):
    mocked.get(STATUS_URL, status=401, payload={"message": "Invalid API key"})
    mocked.get(STATUS_URL, payload=payload("completed"))
    events = await run_all(make_trigger(max_consecutive_poll_failures=5))
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "error"
    assert event["error"] == "AuthenticationError"
    assert event["task_retry"] is False
    assert "401" in event["message"]
    assert "Fix:" in event["message"]
    assert api_key not in json.dumps(event)
    assert len(get_calls(mocked)) == 1


async def test_a_404_right_after_the_submit_is_tolerated(mocked, fake_api_conn, fake_clock):
    mocked.get(STATUS_URL, status=404, payload={"message": "Generation not found"})
    mocked.get(STATUS_URL, payload=payload("completed"))
    events = await run_all(make_trigger(submitted_at=fake_clock.now - 2))
    assert [e["status"] for e in events] == ["success"]


async def test_a_404_long_after_the_submit_is_final(mocked, fake_api_conn, fake_clock):
    mocked.get(STATUS_URL, status=404, payload={"message": "Generation not found"})
    events = await run_all(make_trigger(submitted_at=fake_clock.now - 3600))
    assert [(e["error"], e["task_retry"]) for e in events] == [("GenerationNotFoundError", False)]


# --------------------------------------------------------------------------- logs
async def test_long_pending_render_logs_only_status_changes(mocked, fake_api_conn, caplog):
    mocked.get(STATUS_URL, payload=payload("generating"), repeat=200)
    mocked.get(STATUS_URL, payload=payload("completed"))
    trigger = make_trigger()
    with caplog.at_level(logging.DEBUG, logger=TRIGGER_LOGGER):
        events = await run_all(trigger)
    assert [e["status"] for e in events] == ["success"]
    assert events[0]["polls"] == 201
    lines = [r.getMessage() for r in caplog.records if r.name == TRIGGER_LOGGER]
    # start, "generating", "completed": one line per status change plus the start.
    assert len(lines) <= 4, lines
    assert lines[0].startswith("Waiting for generation gen-1")
    assert "completed" in lines[-1]


# --------------------------------------------------------------------------- real sockets (emulator)
# Renders are held by the emulator's paused clock and released with complete_pending once the test has seen
# what it needs: nothing races the render clock. The triggers' own sleeps are shortened (a real, tiny sleep,
# so the event loop turns), their deadlines are far away on the wall clock.
def _render(emulator) -> str:
    response = submit(emulator.base_url)
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


@pytest.fixture
def held_renders(magicvideo_emulator, magicvideo_conn, monkeypatch):
    magicvideo_conn(magicvideo_emulator.base_url)
    magicvideo_emulator.pause_clock()

    magicvideo_emulator.trigger_sleeps = sleeps = []

    async def short_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0.01)

    monkeypatch.setattr(MagicVideoTrigger, "clock", staticmethod(time.time))
    monkeypatch.setattr(MagicVideoTrigger, "sleep", staticmethod(short_sleep))
    return magicvideo_emulator


async def _release(emulator) -> None:
    await asyncio.to_thread(emulator.complete_pending)


@pytest.mark.integration
def test_a_held_render_is_polled_until_released(held_renders):
    emulator = held_renders
    generation_id = _render(emulator)

    async def main():
        trigger = MagicVideoTrigger(generation_id, deadline_after(600), poll_interval=1)
        events = asyncio.ensure_future(run_all(trigger))
        while len(emulator.trigger_sleeps) < 3 and not events.done():  # a sleep follows each pending poll
            await asyncio.sleep(0.01)
        assert not events.done()  # held: still pending after three polls
        await _release(emulator)
        return await events

    events = asyncio.run(main())
    assert [e["status"] for e in events] == ["success"]
    assert events[0]["result"]["video_url"].startswith("http")
    assert events[0]["polls"] >= 3


@pytest.mark.integration
def test_many_triggers_share_one_client_session(held_renders, caplog):
    emulator = held_renders
    generation_ids = [_render(emulator) for _ in range(4)]
    samples: list[tuple[int, int]] = []
    pool = MagicVideoAsyncHook.pool

    async def main():
        triggers = [MagicVideoTrigger(generation_ids[i % 4], deadline_after(600), poll_interval=1)
                    for i in range(200)]
        tasks = [asyncio.ensure_future(run_all(t)) for t in triggers]

        async def sample():
            while not all(t.done() for t in tasks):
                stats = pool.stats()
                samples.append((stats["sessions"], sum(stats["users"].values())))
                if len(samples) == 30:  # sampled for a while with every render held: now let them finish
                    await _release(emulator)
                await asyncio.sleep(0.005)

        sampler = asyncio.ensure_future(sample())
        results = await asyncio.gather(*tasks)
        await sampler
        return results

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.ERROR, logger="asyncio"):
        warnings.simplefilter("always")
        results = asyncio.run(main())
        gc.collect()
    assert len(results) == 200
    assert all([e["status"] for e in events] == ["success"] for events in results)
    counts = [n for n, _ in samples]
    assert set(counts) <= {0, 1}, samples  # never a second session for the same connection and loop
    first, last = counts.index(1), len(counts) - 1 - counts[::-1].index(1)
    assert set(counts[first:last + 1]) == {1}, samples  # nor a close/reopen while triggers still wait
    assert last - first >= 10
    assert max(users for _, users in samples) <= 200
    assert pool.stats() == {"sessions": 0, "users": {}}
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) or "Unclosed" in str(w.message)]
    assert not unclosed
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


@pytest.mark.integration
def test_cancelled_trigger_yields_nothing_and_releases_the_session(held_renders):
    generation_id = _render(held_renders)
    events: list = []
    pool = MagicVideoAsyncHook.pool

    async def main():
        trigger = MagicVideoTrigger(generation_id, deadline_after(600), poll_interval=1)

        async def consume():
            async for event in trigger.run():
                events.append(event)

        task = asyncio.ensure_future(consume())
        while pool.stats()["sessions"] == 0:
            await asyncio.sleep(0.01)
        assert pool.stats()["users"] == {"magicvideo_default": 1}
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert events == []  # the render is held: it cannot have completed
    assert pool.stats() == {"sessions": 0, "users": {}}
