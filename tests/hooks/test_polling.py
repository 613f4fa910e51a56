"""Wait: the one wait loop's decisions after each poll, with a fake clock (no I/O, no sleeping)."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_magicvideo.exceptions import (
    AuthenticationError,
    GenerationFailedError,
    GenerationNotFoundError,
    GenerationTimeoutError,
    ServerError,
)
from airflow_provider_magicvideo.generation import Generation
from airflow_provider_magicvideo.hooks.polling import Wait
from tests.hooks.support import payload


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _wait(clock: Clock, **kwargs) -> Wait:
    options = dict(deadline=clock.now + 100, poll_interval=10, max_consecutive_failures=2,
                   log=logging.getLogger("tests.polling"))
    return Wait("gen-1", clock=clock, **{**options, **kwargs})


def _gen(status: str) -> Generation:
    return Generation.from_payload(payload(status))


def _server_error() -> ServerError:
    return ServerError("HTTP 503", status_code=503)


def test_completes():
    wait = _wait(Clock())
    assert wait.after(_gen("queued")) == 10
    done = wait.after(_gen("completed"))
    assert isinstance(done, Generation) and done.video_url
    assert wait.polls == 2


def test_error_status_raises_generation_failed():
    with pytest.raises(GenerationFailedError) as info:
        _wait(Clock()).after(_gen("error"))
    assert (info.value.generation_id, info.value.error_name) == ("gen-1", "RenderError")


def test_times_out_at_the_deadline_and_cuts_the_last_sleep():
    clock = Clock()
    wait = _wait(clock, deadline=clock.now + 25)
    assert wait.after(_gen("generating")) == 10
    clock.now += 20
    assert wait.after(_gen("generating")) == 5  # only what is left before the deadline
    clock.now += 5
    with pytest.raises(GenerationTimeoutError) as info:
        wait.after(_gen("generating"))
    assert info.value.last_status == "generating"
    assert info.value.deadline == "1970-01-01T00:17:05+00:00"


def test_tolerates_n_transient_failures_then_raises_the_n_plus_first():
    wait = _wait(Clock(), max_consecutive_failures=2)
    assert wait.after(_server_error()) == 10
    assert wait.after(_server_error()) == 20  # exponential backoff
    last = _server_error()
    with pytest.raises(ServerError) as info:
        wait.after(last)
    assert info.value is last


def test_a_good_poll_resets_the_failure_count():
    wait = _wait(Clock(), max_consecutive_failures=2)
    for _ in range(3):
        wait.after(_server_error())
        wait.after(_server_error())
        assert wait.after(_gen("generating")) == 10
    assert wait.consecutive_failures == 0


@pytest.mark.parametrize("error", [AuthenticationError("HTTP 401", status_code=401),
                                   GenerationNotFoundError("HTTP 404", status_code=404)])
def test_non_transient_error_is_raised_at_once(error):
    wait = _wait(Clock(), max_consecutive_failures=10)
    with pytest.raises(type(error)) as info:
        wait.after(error)
    assert info.value is error


def test_not_found_is_only_tolerated_just_after_the_submit():
    clock = Clock()
    wait = _wait(clock, submitted_at=clock.now - 5)
    assert wait.after(GenerationNotFoundError("HTTP 404", status_code=404)) == 10
    clock.now += 30
    with pytest.raises(GenerationNotFoundError):
        wait.after(GenerationNotFoundError("HTTP 404", status_code=404))


# --------------------------------------------------------------------------- BatchWait
def test_batch_wait_keeps_one_schedule_per_generation():
    import logging

    from airflow_provider_magicvideo.exceptions import GenerationFailedError as Failed
    from airflow_provider_magicvideo.generation import Generation as Gen
    from airflow_provider_magicvideo.generation import GenerationStatus as Status
    from airflow_provider_magicvideo.hooks.polling import BatchWait

    now = [1000.0]
    batch = BatchWait(["a", "b"], deadline=1100, poll_interval=10, max_consecutive_failures=1,
                      log=logging.getLogger("tests.batch_wait"), clock=lambda: now[0])
    assert batch.due() == ["a", "b"] and batch.delay() == 0
    batch.record("a", Gen(id="a", status=Status.GENERATING, raw_status="generating"))
    batch.record("b", Gen(id="b", status=Status.ERROR, raw_status="error", error_name="E", error_message="m"))
    assert isinstance(batch.outcomes["b"], Failed) and batch.due() == [] and batch.delay() == 10
    now[0] += 10
    batch.record("a", Gen(id="a", status=Status.COMPLETED, raw_status="completed", video_url="https://x/a.mp4"))
    assert batch.done and batch.polls == 3 and batch.outcomes["a"].status is Status.COMPLETED
