"""One deferrable wait for a whole batch of generations: polls them all over the shared async session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_magicvideo.exceptions import InvalidInputError, MagicVideoError
from airflow_provider_magicvideo.generation import Generation
from airflow_provider_magicvideo.hooks.identity import HookIdentity
from airflow_provider_magicvideo.hooks.polling import BatchWait, epoch_of, iso
from airflow_provider_magicvideo.tasks import check_count, check_interval


def outcome_of(outcome: Generation | MagicVideoError) -> dict[str, Any]:
    """A finished wait as plain JSON (what the event carries and the blocking wait returns): ``completed`` with
    the credits the status answer named, or ``error`` with the error's class, message and disposition."""
    if isinstance(outcome, Generation):
        return {"status": "completed", "credits_used": outcome.credits_used}
    return {"status": "error", "error": type(outcome).__name__, "message": str(outcome),
            "error_name": getattr(outcome, "error_name", None),
            "error_message": getattr(outcome, "error_message", None),
            "task_retry": outcome.disposition.task_retry}


class MagicVideoBatchTrigger(BaseTrigger):
    """Wait until every generation of a batch is ``completed`` or ``error``, or ``end_time`` passes; yield one
    event ``{"status": "done", "generations": {id: <outcome_of(...)>}, "polls": n}``.

    One trigger (one triggerer slot, one pooled session) per batch task, however many rows it has. Each id keeps
    its own schedule (:class:`BatchWait`, the one wait logic); at most ``max_concurrent_polls`` status requests
    are in flight. Serializes only plain values: the ids, the connection id, absolute times, the poll settings and
    the task's client request id. Never the API key, never a URL.
    """

    clock = staticmethod(time.time)
    sleep = staticmethod(asyncio.sleep)

    def __init__(self, generation_ids: Sequence[str], end_time: str | float,
                 conn_id: str = HookIdentity.default_conn_name, poll_interval: float = 15.0,
                 max_consecutive_poll_failures: int = 5, client_request_id: str | None = None,
                 submitted_at: Mapping[str, float] | None = None, max_concurrent_polls: int = 20) -> None:
        super().__init__()
        if isinstance(generation_ids, str) or not all(isinstance(g, str) and g for g in generation_ids):
            raise InvalidInputError("generation_ids: expected a list of generation ids.")
        self.generation_ids = list(generation_ids)
        self.end_time = iso(epoch_of(end_time))
        self.conn_id = conn_id
        self.poll_interval = check_interval(poll_interval, "poll_interval")
        self.max_consecutive_poll_failures = check_count(max_consecutive_poll_failures, "max_consecutive_poll_failures")
        self.client_request_id = client_request_id
        self.submitted_at = {str(k): epoch_of(v) for k, v in (submitted_at or {}).items()}
        self.max_concurrent_polls = max(1, check_count(max_concurrent_polls, "max_concurrent_polls"))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "generation_ids": self.generation_ids,
            "end_time": self.end_time,
            "conn_id": self.conn_id,
            "poll_interval": self.poll_interval,
            "max_consecutive_poll_failures": self.max_consecutive_poll_failures,
            "client_request_id": self.client_request_id,
            "submitted_at": self.submitted_at,
            "max_concurrent_polls": self.max_concurrent_polls,
        })

    async def run(self) -> AsyncIterator[TriggerEvent]:
        batch = BatchWait(self.generation_ids, deadline=epoch_of(self.end_time), poll_interval=self.poll_interval,
                          max_consecutive_failures=self.max_consecutive_poll_failures, log=self.log,
                          submitted_at=self.submitted_at, clock=self.clock)
        self.log.info("Waiting for %d generations (poll every %gs, deadline %s)", len(self.generation_ids),
                      self.poll_interval, self.end_time)
        limit = asyncio.Semaphore(self.max_concurrent_polls)
        # Imported here: a task builds this trigger to defer, and must not pay for aiohttp (triggerer only).
        from airflow_provider_magicvideo.hooks.async_hook import MagicVideoAsyncHook

        async with MagicVideoAsyncHook(self.conn_id, client_request_id=self.client_request_id) as hook:

            async def poll(generation_id: str) -> None:
                async with limit:
                    try:
                        outcome: Generation | MagicVideoError = await hook.aget_generation(generation_id)
                    except MagicVideoError as exc:
                        outcome = exc
                batch.record(generation_id, outcome)

            while not batch.done:
                await asyncio.gather(*(poll(gid) for gid in batch.due()))
                if not batch.done:
                    await self.sleep(batch.delay())
        finished = {gid: outcome_of(outcome) for gid, outcome in batch.outcomes.items()}
        yield TriggerEvent({"status": "done", "generations": finished, "polls": batch.polls})
