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
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoAsyncHook
from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger, deadline_after
from tests.hooks.support import GENERATIONS_URL, VIDEO_URL, payload
from tests.triggers.conftest import TRIGGER_LOGGER

STATUS_URL = re.compile(rf"^{re.escape(GENERATIONS_URL)}\?generation_id=gen-1$")
CLIENT_ID = "airflow:dag_1:submit:manual__2025:3"


def make_trigger(end_time: str | float | None = None, **kwargs) -> MagicVideoTrigger:
    kwargs.setdefault("poll_interval", 0.01)
    trigger = MagicVideoTrigger("gen-1", end_time if end_time is not None else deadline_after(60), **kwargs)
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
                                max_consecutive_failures=4, client_request_id=CLIENT_ID)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_magicvideo.triggers.magicvideo.MagicVideoTrigger"
    assert _plain(kwargs)
    text = json.dumps(kwargs)
    assert api_key not in text
    assert "http" not in text.lower()
    rebuilt = rebuild(trigger)
    assert type(rebuilt) is MagicVideoTrigger
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["end_time"] == trigger.end_time  # absolute: never recomputed


# --------------------------------------------------------------------------- status sequences
async def test_full_sequence_yields_one_success_event(mocked, fake_api_conn):
    for status in ("queued", "waiting", "generating"):
        mocked.get(STATUS_URL, payload=payload(status))
    mocked.get(STATUS_URL, payload=payload("completed", meta={"usage": {"credits_used": 1_050_000}}))
    events = await run_all(make_trigger(client_request_id=CLIENT_ID))
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "success"
    assert event["generation_id"] == "gen-1"
    assert event["video_url"] == VIDEO_URL
    assert event["url_expires_at"] == "2025-01-02T03:14:05+00:00"  # X-Amz-Date + X-Amz-Expires
    assert event["credits_used"] == 1_050_000
    assert event["polls"] == 4
    calls = get_calls(mocked)
    assert len(calls) == 4
    assert {call.kwargs["headers"]["X-Client-Request-Id"] for call in calls} == {CLIENT_ID}


async def test_error_status_yields_error_event_naming_the_api_error(mocked, fake_api_conn):
    mocked.get(STATUS_URL, payload=payload("generating"))
    mocked.get(STATUS_URL, payload=payload("error", error={"name": "RenderError", "message": "face not found"}))
    events = await run_all(make_trigger())
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "error"
    assert event["fatal"] is True
    assert event["error_name"] == "RenderError"
    assert event["error_message"] == "face not found"
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
async def test_end_time_in_the_past_polls_once_then_times_out(mocked, fake_api_conn):
    mocked.get(STATUS_URL, payload=payload("generating"), repeat=True)
    events = await run_all(make_trigger(end_time=deadline_after(-5)))
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "timeout"
    assert event["last_status"] == "generating"
    assert event["polls"] == 1
    assert len(get_calls(mocked)) == 1


async def test_float_end_time_is_accepted(mocked, fake_api_conn):
    mocked.get(STATUS_URL, payload=payload("queued"), repeat=True)
    events = await run_all(make_trigger(end_time=time.time() - 1))
    assert [e["status"] for e in events] == ["timeout"]


async def test_rebuilt_trigger_keeps_the_original_deadline(mocked, fake_api_conn):
    """A triggerer restart rebuilds the trigger from its kwargs: the wait must not start over."""
    mocked.get(STATUS_URL, payload=payload("generating"), repeat=True)
    deadline = time.time() + 0.8
    original = make_trigger(end_time=deadline_after(0.8), poll_interval=0.05)
    first_run = asyncio.ensure_future(run_all(original))
    await asyncio.sleep(0.3)  # mid-poll: a few polls done, nothing yielded
    assert not first_run.done()
    first_run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first_run
    polls_before = len(get_calls(mocked))
    assert polls_before >= 2

    rebuilt = rebuild(original)
    rebuilt._log = original._log
    assert rebuilt.end_time == original.end_time
    events = await run_all(rebuilt)
    finished = time.time()
    assert [e["status"] for e in events] == ["timeout"]
    assert deadline - 0.1 <= finished < deadline + 0.3, (finished - deadline)
    assert str(original.end_time) in events[0]["message"]


# --------------------------------------------------------------------------- failed polls
async def test_tolerated_failed_polls_then_success(mocked, fake_api_conn):
    mocked.get(STATUS_URL, status=500, body="upstream broke")
    mocked.get(STATUS_URL, status=200, body='{"id": "gen-1", "status": "gener')  # truncated JSON
    mocked.get(STATUS_URL, status=503, body="")
    mocked.get(STATUS_URL, payload=payload("completed"))
    events = await run_all(make_trigger(max_consecutive_failures=3))
    assert [e["status"] for e in events] == ["success"]
    assert events[0]["polls"] == 4
    assert len(get_calls(mocked)) == 4


async def test_one_failed_poll_too_many_is_a_retryable_error_event(mocked, fake_api_conn):
    for _ in range(3):
        mocked.get(STATUS_URL, status=502, body="bad gateway")
    mocked.get(STATUS_URL, status=200, body="<html>not json</html>")
    mocked.get(STATUS_URL, payload=payload("completed"))  # must never be reached
    events = await run_all(make_trigger(max_consecutive_failures=3))
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "error"
    assert event["polls"] == 4
    assert "not JSON" in event["message"]
    # Transient failures (like the blocking wait's ServerError/TransportError) leave task retries to Airflow.
    assert event["fatal"] is False
    assert len(get_calls(mocked)) == 4


async def test_failures_must_be_consecutive(mocked, fake_api_conn):
    for status in (500, None, 500, None, 500):
        if status:
            mocked.get(STATUS_URL, status=status, body="")
        else:
            mocked.get(STATUS_URL, payload=payload("generating"))
    mocked.get(STATUS_URL, payload=payload("completed"))
    events = await run_all(make_trigger(max_consecutive_failures=1))
    assert [e["status"] for e in events] == ["success"]


async def test_401_is_an_immediate_fatal_error_event(mocked, fake_api_conn, api_key):
    mocked.get(STATUS_URL, status=401, payload={"message": "Invalid API key"})
    mocked.get(STATUS_URL, payload=payload("completed"))
    events = await run_all(make_trigger(max_consecutive_failures=5))
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "error"
    assert event["fatal"] is True
    assert "401" in event["message"]
    assert "Fix:" in event["message"]
    assert api_key not in json.dumps(event)
    assert len(get_calls(mocked)) == 1


# --------------------------------------------------------------------------- logs
async def test_long_pending_render_logs_only_status_changes(mocked, fake_api_conn, caplog):
    mocked.get(STATUS_URL, payload=payload("generating"), repeat=200)
    mocked.get(STATUS_URL, payload=payload("completed"))
    trigger = make_trigger(poll_interval=0.0005)
    with caplog.at_level(logging.DEBUG, logger=TRIGGER_LOGGER):
        events = await run_all(trigger)
    assert [e["status"] for e in events] == ["success"]
    assert events[0]["polls"] == 201
    lines = [r.getMessage() for r in caplog.records if r.name == TRIGGER_LOGGER]
    # start, "generating", "completed", finish: at most one line per status change plus start and finish.
    assert len(lines) <= 4, lines
    assert lines[0].startswith("Waiting for generation gen-1")
    assert "completed" in lines[-1]


# --------------------------------------------------------------------------- real sockets (emulator)
def _render(emulator) -> str:
    response = submit(emulator.base_url)
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


@pytest.mark.integration
def test_run_does_not_block_the_event_loop(magicvideo_emulator, magicvideo_conn, caplog):
    magicvideo_conn(magicvideo_emulator.base_url)
    generation_id = _render(magicvideo_emulator)

    async def blocker():
        asyncio.get_running_loop().slow_callback_duration = 0.05
        time.sleep(0.08)

    async def wait():
        asyncio.get_running_loop().slow_callback_duration = 0.05
        trigger = MagicVideoTrigger(generation_id, deadline_after(30), poll_interval=0.1)
        return [event.payload async for event in trigger.run()]

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        asyncio.run(blocker(), debug=True)  # the check itself can see a blocking call
        assert any("took" in r.getMessage() for r in caplog.records if r.name == "asyncio")
        caplog.clear()
        events = asyncio.run(wait(), debug=True)
    assert [e["status"] for e in events] == ["success"]
    slow = [r.getMessage() for r in caplog.records if r.name == "asyncio" and "took" in r.getMessage()]
    assert not slow


@pytest.mark.integration
def test_many_triggers_share_one_client_session(magicvideo_emulator, magicvideo_conn, caplog):
    magicvideo_conn(magicvideo_emulator.base_url)
    generation_ids = [_render(magicvideo_emulator) for _ in range(4)]
    samples: list[tuple[int, int]] = []

    async def main():
        triggers = [MagicVideoTrigger(generation_ids[i % 4], deadline_after(60), poll_interval=0.2)
                    for i in range(200)]
        tasks = [asyncio.ensure_future(run_all(t)) for t in triggers]

        async def sample():
            while not all(t.done() for t in tasks):
                shared = list(MagicVideoAsyncHook._shared.values())
                in_use = len(getattr(shared[0].session.connector, "_acquired", ())) if shared else 0
                samples.append((len(shared), in_use))
                await asyncio.sleep(0.02)

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
    first, last = counts.index(1), len(counts) - 1 - counts[::-1].index(1)
    assert set(counts) <= {0, 1}, samples  # never a second session for the same connection and loop
    assert set(counts[first:last + 1]) == {1}, samples  # nor a close/reopen while triggers still wait
    assert last - first >= 10  # sampled for a while (renders take ~1 s, samples every 20 ms)
    assert max(in_use for _, in_use in samples) <= MagicVideoAsyncHook.connection_limit
    assert MagicVideoAsyncHook._shared == {}
    assert MagicVideoAsyncHook._locks == {}
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) or "Unclosed" in str(w.message)]
    assert not unclosed
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


@pytest.mark.integration
def test_cancelled_trigger_yields_nothing_and_releases_the_session(magicvideo_emulator, magicvideo_conn):
    magicvideo_conn(magicvideo_emulator.base_url)
    generation_id = _render(magicvideo_emulator)
    events: list = []

    async def main():
        trigger = MagicVideoTrigger(generation_id, deadline_after(60), poll_interval=0.1)

        async def consume():
            async for event in trigger.run():
                events.append(event)

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.3)
        assert len(MagicVideoAsyncHook._shared) == 1
        session = next(iter(MagicVideoAsyncHook._shared.values())).session
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return session

    session = asyncio.run(main())
    assert events == []
    assert MagicVideoAsyncHook._shared == {}
    assert session.closed
