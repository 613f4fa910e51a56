"""The one wait loop's decisions, free of I/O: what to do after each status poll.

:class:`Wait` is driven by three callers, each a few lines that only fetch and sleep: the sync hook's
``wait_for_generation`` (blocking), the trigger's ``run`` (asyncio) and the sensor's ``poke`` (one poll per
call). After every poll, :meth:`Wait.after` either returns the completed :class:`Generation`, or the seconds
to sleep before the next poll, or raises: :class:`GenerationFailedError`, :class:`GenerationTimeoutError`,
or the poll's own error when its disposition is not transient or too many failed in a row.
:class:`BatchWait` keeps many of them on one schedule, for the batch trigger and the blocking batch wait.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow_provider_magicvideo import metrics
from airflow_provider_magicvideo.exceptions import (
    GenerationFailedError,
    GenerationNotFoundError,
    GenerationTimeoutError,
    MagicVideoError,
)
from airflow_provider_magicvideo.generation import Generation, GenerationStatus

#: A generation submitted this recently may not be visible to status requests yet (the API is distributed):
#: a 404 inside this window is a failed poll to tolerate, not "this generation does not exist".
NOT_FOUND_GRACE_SECONDS = 30.0
#: Longest backoff after failed polls in a row.
FAILURE_BACKOFF_CAP = 60.0


def iso(epoch: float) -> str:
    """An absolute time as UTC ISO text (what triggers serialize and messages show)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def failure_backoff(poll_interval: float, consecutive_failures: int) -> float:
    """Delay before the next poll after ``consecutive_failures`` failed polls in a row (exponential)."""
    return min(max(poll_interval, FAILURE_BACKOFF_CAP), poll_interval * 2 ** max(0, consecutive_failures - 1))


class Wait:
    """One wait for one generation.

    :param deadline: epoch seconds after which a pending generation times out (``math.inf``: never, as for a
        sensor's poke, whose timeout is Airflow's).
    :param max_consecutive_failures: failed polls with a transient disposition tolerated in a row.
    :param submitted_at: epoch seconds of the submit, when known: enables the not-found grace window.
    """

    def __init__(self, generation_id: str, *, deadline: float, poll_interval: float, max_consecutive_failures: int,
                 log: logging.Logger | Any, submitted_at: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.generation_id = generation_id
        self.deadline = deadline
        self.poll_interval = poll_interval
        self.max_consecutive_failures = max_consecutive_failures
        self.submitted_at = submitted_at
        self.log = log
        self.clock = clock
        self.started = clock()
        self.last_status: str | None = None
        self.consecutive_failures = 0
        self.polls = 0

    def after(self, outcome: Generation | MagicVideoError) -> Generation | float:
        """Decide after one poll whose result (or error) is ``outcome``."""
        self.polls += 1
        if isinstance(outcome, MagicVideoError):
            delay = self._failed(outcome)
        else:
            self._observed(outcome)
            if outcome.status is GenerationStatus.COMPLETED:
                return outcome
            if outcome.status is GenerationStatus.ERROR:
                raise GenerationFailedError(outcome.id, outcome.error_name, outcome.error_message)
            delay = self.poll_interval
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            raise GenerationTimeoutError(self.generation_id, iso(self.deadline), self.last_status)
        return min(delay, remaining)

    def _observed(self, generation: Generation) -> None:
        if self.consecutive_failures:
            self.log.info("Generation %s: status polls work again after %d failure(s)", self.generation_id,
                          self.consecutive_failures)
        self.consecutive_failures = 0
        if generation.raw_status != self.last_status:
            self.log.info("Generation %s: %s (after %.0fs)", self.generation_id, generation.raw_status,
                          self.clock() - self.started)
            self.last_status = generation.raw_status

    def _failed(self, exc: MagicVideoError) -> float:
        if not (exc.disposition.transient or self._just_submitted(exc)):
            raise exc
        self.consecutive_failures += 1
        if self.consecutive_failures > self.max_consecutive_failures:
            raise exc
        metrics.poll_failure(exc)
        delay = failure_backoff(self.poll_interval, self.consecutive_failures)
        self.log.warning("Generation %s: status poll failed (%d/%d tolerated): %s; next poll in %.1fs",
                         self.generation_id, self.consecutive_failures, self.max_consecutive_failures, exc, delay)
        return delay

    def _just_submitted(self, exc: MagicVideoError) -> bool:
        return (isinstance(exc, GenerationNotFoundError) and self.submitted_at is not None
                and self.clock() - self.submitted_at < NOT_FOUND_GRACE_SECONDS)


def epoch_of(end_time: Any) -> float:
    """Epoch seconds of an absolute deadline given as epoch seconds, a datetime or ISO text."""
    from airflow_provider_magicvideo.exceptions import InvalidInputError

    try:
        if isinstance(end_time, (int, float)) and not isinstance(end_time, bool):
            value = float(end_time)
        else:
            when = end_time if isinstance(end_time, datetime) else datetime.fromisoformat(str(end_time))
            value = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()  # naive means UTC
    except (TypeError, ValueError, OverflowError, OSError):
        value = math.nan
    if not math.isfinite(value):
        raise InvalidInputError(f"end_time: {str(end_time)[:60]!r} is not an absolute time (epoch seconds or ISO "
                                "8601 text such as '2026-01-01T12:00:00+00:00').")
    return value


class BatchWait:
    """Many :class:`Wait` objects on one schedule: which generations are due for a poll, and when the next one is.

    The decisions stay :class:`Wait`'s (statuses, tolerated failures, the not-found grace, the deadline); this only
    keeps one due time per generation, so a batch trigger (async) and a blocking batch wait (threads) drive the same
    logic with a few lines each. ``outcomes`` maps each finished id to its completed :class:`Generation` or to the
    error that ended its wait (``GenerationFailedError``, ``GenerationTimeoutError``, a poll failure not tolerated).
    """

    def __init__(self, generation_ids: Iterable[str], *, deadline: float, poll_interval: float,
                 max_consecutive_failures: int, log: logging.Logger | Any,
                 submitted_at: Mapping[str, float] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        known = submitted_at or {}
        self.waits = {gid: Wait(gid, deadline=deadline, poll_interval=poll_interval, log=log, clock=clock,
                                max_consecutive_failures=max_consecutive_failures, submitted_at=known.get(gid))
                      for gid in generation_ids}
        now = clock()
        self._due_at = dict.fromkeys(self.waits, now)
        self.outcomes: dict[str, Generation | MagicVideoError] = {}

    @property
    def done(self) -> bool:
        return not self._due_at

    @property
    def polls(self) -> int:
        return sum(wait.polls for wait in self.waits.values())

    def due(self) -> list[str]:
        """The generations to poll now."""
        now = self.clock()
        return [gid for gid, at in self._due_at.items() if at <= now]

    def record(self, generation_id: str, outcome: Generation | MagicVideoError) -> None:
        """Feed one poll's answer (or error) to that generation's :class:`Wait`."""
        step: Generation | float | MagicVideoError
        try:
            step = self.waits[generation_id].after(outcome)
        except MagicVideoError as exc:
            step = exc
        if isinstance(step, (Generation, MagicVideoError)):
            self.outcomes[generation_id] = step
            del self._due_at[generation_id]
        else:
            self._due_at[generation_id] = self.clock() + step

    def delay(self) -> float:
        """Seconds until the next generation is due (0 when one is due now)."""
        return max(0.0, min(self._due_at.values(), default=self.clock()) - self.clock())
