"""The retry policy, attempt by attempt: what is retried, how often, how long it waits, and the submit rule."""

from __future__ import annotations

import logging
import random

import pytest

from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
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
    disposition_of,
)
from airflow_provider_magicvideo.hooks.polling import failure_backoff
from airflow_provider_magicvideo.hooks.retry import RetryPolicy, may_resend


def _http(status: int, retry_after: float | None = None) -> ApiStatusError:
    cls = {400: RequestValidationError, 401: AuthenticationError, 403: InsufficientCreditsError,
           404: GenerationNotFoundError, 429: RateLimitError}.get(status, ServerError if status >= 500 else ApiStatusError)
    return cls(f"HTTP {status}", status_code=status, retry_after=retry_after, client_request_id="crid-1")


def _not_sent() -> ConnectFailedError:
    return ConnectFailedError("could not connect", client_request_id="crid-1")


def _sent() -> ApiConnectionError:
    return ApiConnectionError("no answer", client_request_id="crid-1")


class Script:
    """A callable that raises (or returns) the scripted outcomes in order and counts attempts."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.attempts = 0

    def __call__(self):
        self.attempts += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def acall(self):
        return self()


class SleepRecorder(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


POLICY = RetryPolicy(max_retries=3, backoff_initial=0.5, backoff_max=8.0)


# --------------------------------------------------------------------------- GET
@pytest.mark.parametrize(
    "failure", [_not_sent, _sent, lambda: _http(429), lambda: _http(500), lambda: _http(502),
                lambda: _http(503), lambda: _http(504), lambda: UnexpectedResponseError("not JSON")],
)
def test_get_is_retried_on_transient_failures(failure, sleeps):
    fn = Script(failure(), failure(), "ok")
    assert POLICY.call("GET", "status", fn, sleep=sleeps) == "ok"
    assert fn.attempts == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_get_is_not_retried_on_client_errors(status, sleeps):
    error = _http(status)
    fn = Script(error, "never")
    with pytest.raises(type(error)) as info:
        POLICY.call("GET", "status", fn, sleep=sleeps)
    assert info.value is error
    assert info.value.__cause__ is None  # not chained to itself
    assert fn.attempts == 1
    assert sleeps == []


@pytest.mark.parametrize("max_retries", [0, 1, 3, 5])
def test_get_gives_up_after_max_retries_plus_one_and_raises_the_last_error(max_retries, sleeps):
    errors = [_http(503) for _ in range(max_retries)] + [_http(502)]
    fn = Script(*errors, "never")
    with pytest.raises(ServerError) as info:
        RetryPolicy(max_retries=max_retries).call("GET", "status", fn, sleep=sleeps)
    assert info.value is errors[-1]
    assert info.value.status_code == 502
    assert fn.attempts == max_retries + 1
    assert len(sleeps) == max_retries


# --------------------------------------------------------------------------- POST (a billed submit)
def test_post_retried_when_the_request_never_left(sleeps):
    fn = Script(_not_sent(), _not_sent(), {"id": "g"})
    assert POLICY.call("POST", "submit", fn, sleep=sleeps) == {"id": "g"}
    assert fn.attempts == 3


def test_post_retried_on_429(sleeps):
    fn = Script(_http(429), {"id": "g"})
    assert POLICY.call("POST", "submit", fn, sleep=sleeps) == {"id": "g"}
    assert fn.attempts == 2


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (_sent, "ApiConnectionError: no answer"),
        (lambda: _http(500), "HTTP 500"),
        (lambda: _http(502), "HTTP 502"),
        (lambda: _http(503), "HTTP 503"),
        (lambda: _http(504), "HTTP 504"),
        (lambda: UnexpectedResponseError("garbled"), "UnexpectedResponseError: garbled"),
    ],
)
def test_post_with_unknown_outcome_is_ambiguous_after_exactly_one_attempt(failure, cause, sleeps):
    original = failure()
    fn = Script(original, {"id": "never"})
    with pytest.raises(AmbiguousSubmitError) as info:
        POLICY.call("POST", "submit", fn, sleep=sleeps)
    assert fn.attempts == 1
    assert sleeps == []
    assert f"({cause})" in str(info.value)
    # Raised outside the handler: no chain back to texts the server sent.
    assert info.value.__cause__ is None and info.value.__context__ is None
    if getattr(original, "client_request_id", None):
        assert info.value.client_request_id == "crid-1"
        assert "'crid-1'" in str(info.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_post_client_errors_are_raised_as_is(status, sleeps):
    error = _http(status)
    fn = Script(error)
    with pytest.raises(type(error)) as info:
        POLICY.call("POST", "submit", fn, sleep=sleeps)
    assert info.value is error
    assert fn.attempts == 1


def test_post_not_sent_exhausted_raises_the_transport_error(sleeps):
    fn = Script(*[_not_sent() for _ in range(4)])
    with pytest.raises(ConnectFailedError):
        POLICY.call("POST", "submit", fn, sleep=sleeps)
    assert fn.attempts == 4


def test_post_429_exhausted_is_a_rate_limit_error_not_ambiguous(sleeps):
    fn = Script(*[_http(429) for _ in range(4)])
    with pytest.raises(RateLimitError):
        POLICY.call("POST", "submit", fn, sleep=sleeps)
    assert fn.attempts == 4


def test_method_is_case_insensitive(sleeps):
    fn = Script(_http(503))
    with pytest.raises(AmbiguousSubmitError):
        POLICY.call("post", "submit", fn, sleep=sleeps)
    assert not may_resend("post", _sent())
    assert may_resend("get", _sent())
    assert may_resend("post", _not_sent())


def test_non_magicvideo_errors_are_not_retried(sleeps):
    fn = Script(KeyError("bug"), "never")
    with pytest.raises(KeyError):
        POLICY.call("GET", "status", fn, sleep=sleeps)
    assert fn.attempts == 1


# --------------------------------------------------------------------------- backoff
@pytest.mark.parametrize(
    ("initial", "cap", "retry_number", "ceiling"),
    [(0.5, 8.0, 1, 0.5), (0.5, 8.0, 2, 1.0), (0.5, 8.0, 3, 2.0), (0.5, 8.0, 5, 8.0), (0.5, 8.0, 9, 8.0),
     (2.0, 3.0, 2, 3.0)],
)
def test_full_jitter_bounds(initial, cap, retry_number, ceiling):
    random.seed(1234)
    policy = RetryPolicy(backoff_initial=initial, backoff_max=cap)
    samples = [policy.backoff(retry_number) for _ in range(2000)]
    assert all(0 <= s <= ceiling for s in samples)
    # Full jitter really spreads over the whole range (not a fixed or capped-low value).
    assert min(samples) < 0.1 * ceiling
    assert max(samples) > 0.9 * ceiling
    assert len(set(samples)) > 1000


@pytest.mark.parametrize(("retry_after", "used"), [(0, True), (0.0, True), (7, True), (60, True), (60.5, False),
                                                   (3600, False), (None, False), (-1, False)])
def test_retry_after_is_used_only_when_sane(retry_after, used):
    random.seed(7)
    wait = POLICY.backoff(1, retry_after)
    if used:
        assert wait == retry_after
    else:
        assert 0 <= wait <= 0.5


def test_tenacity_sleeps_follow_backoff_and_retry_after(sleeps):
    random.seed(42)
    fn = Script(_http(503), _http(429, retry_after=5.0), _http(429, retry_after=600.0), "ok")
    assert POLICY.call("GET", "status", fn, sleep=sleeps) == "ok"
    assert len(sleeps) == 3
    assert 0 <= sleeps[0] <= 0.5
    assert sleeps[1] == 5.0
    assert 0 <= sleeps[2] <= 2.0  # 600 s is ignored: jitter under the third retry's ceiling


def test_retries_are_logged_with_the_planned_sleep(sleeps, caplog):
    caplog.set_level(logging.WARNING, logger="airflow_provider_magicvideo.hooks.retry")
    fn = Script(_http(429, retry_after=2.0), "ok")
    POLICY.call("GET", "status request for g", fn, sleep=sleeps)
    (record,) = [r for r in caplog.records if r.name == "airflow_provider_magicvideo.hooks.retry"]
    assert record.getMessage() == "status request for g failed (HTTP 429); retry 1/3 in 2.0s"


# --------------------------------------------------------------------------- async
async def test_acall_retries_with_the_injected_async_sleep():
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    fn = Script(_http(503), _http(429, retry_after=1.5), _sent(), "ok")
    assert await POLICY.acall("GET", "status", fn.acall, sleep=fake_sleep) == "ok"
    assert fn.attempts == 4
    assert len(slept) == 3 and slept[1] == 1.5


async def test_acall_post_ambiguous_and_exhaustion():
    async def no_sleep(seconds: float) -> None:
        return None

    fn = Script(_sent())
    with pytest.raises(AmbiguousSubmitError):
        await POLICY.acall("POST", "submit", fn.acall, sleep=no_sleep)
    assert fn.attempts == 1

    fn = Script(*[_http(504) for _ in range(3)])
    with pytest.raises(ServerError) as info:
        await RetryPolicy(max_retries=2).acall("GET", "status", fn.acall, sleep=no_sleep)
    assert fn.attempts == 3
    assert info.value.__cause__ is None

    fn = Script(_not_sent(), "ok")
    assert await POLICY.acall("POST", "submit", fn.acall, sleep=no_sleep) == "ok"


# --------------------------------------------------------------------------- poll-level tolerance
@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (_sent(), True),
        (_not_sent(), True),
        (UnexpectedResponseError("bad json"), True),
        (_http(429), True),
        (_http(500), True),
        (_http(503), True),
        (ServerError("odd 502", status_code=502), True),
        (ApiStatusError("conflict", status_code=409), False),
        (_http(400), False),
        (_http(401), False),
        (_http(403), False),
        (_http(404), False),
        (RuntimeError("bug"), False),
    ],
)
def test_poll_failure_transience_comes_from_the_disposition(exc, transient):
    assert disposition_of(exc).transient is transient


@pytest.mark.parametrize(
    ("interval", "failures", "delay"),
    [(15, 0, 15), (15, 1, 15), (15, 2, 30), (15, 3, 60), (15, 4, 60), (15, 20, 60), (1, 3, 4), (1, 10, 60),
     (100, 1, 100), (100, 5, 100)],
)
def test_poll_failure_backoff(interval, failures, delay):
    assert failure_backoff(interval, failures) == delay
