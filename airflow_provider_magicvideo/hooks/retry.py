"""The HTTP retry policy of both hooks. It decides nothing itself: it reads each error's ``disposition``.

* ``Resend.ALWAYS`` (429, a connection that never reached the server): sent again, POST included;
* ``Resend.IF_IDEMPOTENT`` (5xx, a lost answer, an unreadable 2xx): a GET is sent again; a submit POST
  that ends this way may have created a billed generation, so it becomes :class:`AmbiguousSubmitError` and is
  never sent again;
* ``Resend.NEVER``: raised as is.

Waits honour a sane ``Retry-After`` (seconds or HTTP-date); otherwise exponential backoff with full jitter.
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

from airflow_provider_magicvideo.exceptions import AmbiguousSubmitError, MagicVideoError, Resend

log = logging.getLogger(__name__)

T = TypeVar("T")


def may_resend(method: str, exc: BaseException) -> bool:
    """Whether the same request may be sent again after ``exc`` (one line of the disposition table)."""
    resend = exc.disposition.resend if isinstance(exc, MagicVideoError) else Resend.NEVER
    return resend is Resend.ALWAYS or (resend is Resend.IF_IDEMPOTENT and method.upper() != "POST")


def _final(method: str, exc: MagicVideoError) -> MagicVideoError:
    """A submit whose last failure left its outcome open may have created (and billed) a generation."""
    if method.upper() == "POST" and exc.disposition.resend is Resend.IF_IDEMPOTENT:
        return AmbiguousSubmitError(_short(exc), client_request_id=getattr(exc, "client_request_id", None))
    return exc


def _short(exc: BaseException | None) -> str:
    if exc is None:
        return "no outcome"
    status = getattr(exc, "status_code", None)
    return f"HTTP {status}" if status else f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` counts retries after the first attempt. Backoff before retry *n* (1-based) is
    uniform in ``[0, min(backoff_max, backoff_initial * 2**(n-1))]`` (full jitter) unless the server sent
    a ``Retry-After`` of at most ``retry_after_max`` seconds, which is then used as is."""

    max_retries: int = 3
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 60.0

    def backoff(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry ``retry_number`` (1 = first retry)."""
        if retry_after is not None and 0 <= retry_after <= self.retry_after_max:
            return retry_after
        return random.uniform(0, min(self.backoff_max, self.backoff_initial * 2 ** (retry_number - 1)))

    def _kwargs(self, method: str, what: str) -> dict:
        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.backoff(state.attempt_number, getattr(exc, "retry_after", None))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("%s failed (%s); retry %d/%d in %.1fs", what, _short(exc), state.attempt_number,
                        self.max_retries, state.next_action.sleep if state.next_action else 0.0)

        return dict(stop=tenacity.stop_after_attempt(self.max_retries + 1), wait=wait, reraise=True,
                    retry=tenacity.retry_if_exception(lambda exc: may_resend(method, exc)),
                    before_sleep=before_sleep)

    # The first attempt runs bare: building tenacity's machinery on every call was a third of a triggerer's
    # CPU per poll. Only after a resendable failure does tenacity take over, replaying that failure as its
    # attempt 1, so attempt numbers, waits and logs are the same as if it ran from the start.
    def call(self, method: str, what: str, fn: Callable[[], T], *,
             sleep: Callable[[float], None] = time.sleep) -> T:
        """Run ``fn`` under this policy (sync)."""
        try:
            try:
                return fn()
            except MagicVideoError as exc:
                if not may_resend(method, exc) or self.max_retries < 1:
                    raise
                pending = [exc]

            def replay_then_call() -> T:
                return fn() if not pending else _raise(pending.pop())

            return tenacity.Retrying(sleep=sleep, **self._kwargs(method, what))(replay_then_call)
        except MagicVideoError as exc:
            final = _final(method, exc)
            if final is exc:
                raise
            error = final
        raise error  # outside the handler: no chain back to texts the server sent

    async def acall(self, method: str, what: str, fn: Callable[[], Awaitable[T]], *,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> T:
        """Run ``fn`` under this policy (async)."""
        try:
            try:
                return await fn()
            except MagicVideoError as exc:
                if not may_resend(method, exc) or self.max_retries < 1:
                    raise
                pending = [exc]

            async def replay_then_call() -> T:
                return await fn() if not pending else _raise(pending.pop())

            return await tenacity.AsyncRetrying(sleep=sleep, **self._kwargs(method, what))(replay_then_call)
        except MagicVideoError as exc:
            final = _final(method, exc)
            if final is exc:
                raise
            error = final
        raise error


def _raise(exc: BaseException) -> T:  # type: ignore[type-var]
    raise exc
