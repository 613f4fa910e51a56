"""Where every retry decision is made: HTTP-level retries and poll-level failure tolerance.

* Status GETs are idempotent: retried on transport errors, timeouts, 429 and 500/502/503/504.
* A submit POST creates a billed render (1,050,000 credits). It is retried only when no render can
  exist: the request never reached the server (connection refused, connect timeout, DNS) or the
  server said 429. A read timeout, a dropped connection or a 5xx after the request was sent becomes
  :class:`AmbiguousSubmitError` and is never retried.
* Waits honour a sane ``Retry-After`` (seconds or HTTP-date); otherwise exponential backoff with full
  jitter, capped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    ApiError,
    MagicVideoError,
    RateLimitError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """HTTP retry policy shared by the sync and the async hook.

    ``max_retries`` counts retries after the first attempt. Backoff before retry *n* (1-based) is
    uniform in ``[0, min(backoff_max, backoff_initial * 2**(n-1))]`` (full jitter) unless the
    server sent a ``Retry-After`` of at most ``retry_after_max`` seconds, which is then used as is.
    """

    max_retries: int = 3
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 60.0

    def is_retryable(self, method: str, exc: BaseException) -> bool:
        if isinstance(exc, RateLimitError):
            return True
        if method.upper() == "POST":
            # Only when the request cannot have created a render.
            return isinstance(exc, TransportError) and not getattr(exc, "request_sent", True)
        if isinstance(exc, TransportError):
            return True
        return isinstance(exc, ApiError) and exc.status_code in RETRYABLE_STATUS

    def backoff(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry ``retry_number`` (1 = first retry)."""
        if retry_after is not None and 0 <= retry_after <= self.retry_after_max:
            return retry_after
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (retry_number - 1))
        return random.uniform(0, ceiling)

    # -- tenacity wiring ---------------------------------------------------------------------------
    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return self.backoff(state.attempt_number, getattr(exc, "retry_after", None))

    def _log_retry(self, what: str) -> Callable[[tenacity.RetryCallState], None]:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            sleep = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "%s failed (%s); retry %d/%d in %.1fs", what, _short(exc), state.attempt_number,
                self.max_retries, sleep,
            )

        return before_sleep

    def _kwargs(self, method: str, what: str) -> dict:
        return dict(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda exc: self.is_retryable(method, exc)),
            before_sleep=self._log_retry(what),
            reraise=True,
        )

    # The first attempt runs bare: building tenacity's machinery on every call was a third of a
    # triggerer's CPU per poll. Only after a retryable failure does tenacity take over, replaying that
    # failure as its attempt 1, so attempt numbers, waits and logs are the same as if it ran from the start.
    def call(
        self, method: str, what: str, fn: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep
    ) -> T:
        """Run ``fn`` under this policy (sync)."""
        try:
            try:
                return fn()
            except MagicVideoError as exc:
                if not self.is_retryable(method, exc) or self.max_retries < 1:
                    raise
                first = exc
            pending = [first]

            def replay_then_call() -> T:
                if pending:
                    raise pending.pop()
                return fn()

            return tenacity.Retrying(sleep=sleep, **self._kwargs(method, what))(replay_then_call)
        except MagicVideoError as exc:
            converted = _ambiguous_if_submit(method, exc)
            if converted is exc:
                raise  # not "raise exc from exc": that would make the error its own __cause__
            raise converted from exc

    async def acall(
        self,
        method: str,
        what: str,
        fn: Callable[[], Awaitable[T]],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """Run ``fn`` under this policy (async)."""
        try:
            try:
                return await fn()
            except MagicVideoError as exc:
                if not self.is_retryable(method, exc) or self.max_retries < 1:
                    raise
                first = exc
            pending = [first]

            async def replay_then_call() -> T:
                if pending:
                    raise pending.pop()
                return await fn()

            return await tenacity.AsyncRetrying(sleep=sleep, **self._kwargs(method, what))(replay_then_call)
        except MagicVideoError as exc:
            converted = _ambiguous_if_submit(method, exc)
            if converted is exc:
                raise
            raise converted from exc


def _ambiguous_if_submit(method: str, exc: MagicVideoError) -> MagicVideoError:
    """A POST that was sent but got no clear answer may have created a render: say so, never resubmit."""
    if method.upper() != "POST":
        return exc
    if isinstance(exc, TransportError) and exc.request_sent:
        return AmbiguousSubmitError(_short(exc), client_request_id=getattr(exc, "client_request_id", None))
    if isinstance(exc, (ServerError, UnexpectedResponseError)):
        return AmbiguousSubmitError(_short(exc), client_request_id=getattr(exc, "client_request_id", None))
    return exc


def _short(exc: BaseException | None) -> str:
    if exc is None:
        return "no outcome"
    if isinstance(exc, ApiError) and exc.status_code:
        return f"HTTP {exc.status_code}"
    return f"{type(exc).__name__}: {exc}"


def is_transient_poll_failure(exc: BaseException) -> bool:
    """A failed status poll worth tolerating (up to the task's limit) rather than failing the wait.

    Auth, credit, validation and not-found answers are not transient: waiting will not fix them.
    """
    if isinstance(exc, (TransportError, UnexpectedResponseError, RateLimitError, ServerError)):
        return True
    return isinstance(exc, ApiError) and exc.status_code in RETRYABLE_STATUS


def poll_failure_backoff(poll_interval: float, consecutive_failures: int, cap: float = 60.0) -> float:
    """Delay before the next poll after ``consecutive_failures`` failed polls in a row (exponential)."""
    return min(max(poll_interval, cap), poll_interval * 2 ** max(0, consecutive_failures - 1))
