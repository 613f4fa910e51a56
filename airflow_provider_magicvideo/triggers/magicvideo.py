"""Deferrable wait for a generation: polls from the triggerer, not from a worker slot."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_magicvideo.exceptions import MagicVideoError
from airflow_provider_magicvideo.generation import Generation
from airflow_provider_magicvideo.hooks.identity import HookIdentity
from airflow_provider_magicvideo.hooks.polling import Wait, epoch_of, iso
from airflow_provider_magicvideo.tasks import check_count, check_interval


def deadline_after(seconds: float) -> str:
    """The absolute UTC deadline ``seconds`` from now, as ISO text (what the trigger serializes)."""
    return iso(time.time() + seconds)


class MagicVideoTrigger(BaseTrigger):
    """Wait until a generation is ``completed`` or ``error``, or ``end_time`` passes; yield one event.

    Serializes only plain values: the generation id, the connection id, absolute times (``end_time``, fixed at
    the first deferral so a triggerer restart never extends the wait; ``submitted_at``), the poll interval,
    the failure tolerance and the client request id. Never the API key, never a URL.
    ``deadline_by_airflow=True`` (with ``end_time=None``): no deadline of its own, for a sensor started from
    the triggerer, whose arguments are fixed at parse time; the task's trigger timeout bounds the wait.

    The event is ``{"status": "success", "generation_id", "result": {...}}`` (the same dict the blocking path
    returns) or ``{"status": "error", "generation_id", "error": <class name>, "message", "task_retry"}``;
    ``task_retry`` is the error's disposition: False when no retry of the task can help.

    :param max_consecutive_poll_failures: failed polls (network, 5xx, malformed answers) tolerated in a row,
        with exponential backoff, before the wait fails.
    """

    #: The clock the deadline is measured on and the sleep between polls (replaceable in tests, so a test can
    #: run a whole wait on a fake clock without sleeping or racing the wall clock).
    clock = staticmethod(time.time)
    sleep = staticmethod(asyncio.sleep)

    def __init__(self, generation_id: str, end_time: str | float | None,
                 conn_id: str = HookIdentity.default_conn_name, poll_interval: float = 15.0,
                 max_consecutive_poll_failures: int = 5, client_request_id: str | None = None,
                 submitted_at: float | None = None, deadline_by_airflow: bool = False) -> None:
        super().__init__()
        self.generation_id = generation_id
        # Only on request: a trigger that lost its deadline by mistake would wait forever.
        self.deadline_by_airflow = deadline_by_airflow is True
        self.end_time = None if self.deadline_by_airflow and end_time is None else iso(epoch_of(end_time))
        self.conn_id = conn_id
        self.poll_interval = check_interval(poll_interval, "poll_interval")
        self.max_consecutive_poll_failures = check_count(max_consecutive_poll_failures, "max_consecutive_poll_failures")
        self.client_request_id = client_request_id
        self.submitted_at = None if submitted_at is None else epoch_of(submitted_at)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        extra = {"deadline_by_airflow": True} if self.deadline_by_airflow else {}
        return (f"{type(self).__module__}.{type(self).__qualname__}", {**extra,
            "generation_id": self.generation_id,
            "end_time": self.end_time,
            "conn_id": self.conn_id,
            "poll_interval": self.poll_interval,
            "max_consecutive_poll_failures": self.max_consecutive_poll_failures,
            "client_request_id": self.client_request_id,
            "submitted_at": self.submitted_at,
        })

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = math.inf if self.end_time is None else epoch_of(self.end_time)
        wait = Wait(self.generation_id, deadline=deadline, poll_interval=self.poll_interval,
                    max_consecutive_failures=self.max_consecutive_poll_failures, log=self.log,
                    submitted_at=self.submitted_at, clock=self.clock)
        self.log.info("Waiting for generation %s (poll every %gs, deadline %s)", self.generation_id,
                      self.poll_interval, self.end_time or "the task's trigger timeout")
        # Imported here: a task builds this trigger to defer, and must not pay for aiohttp (triggerer only).
        from airflow_provider_magicvideo.hooks.async_hook import MagicVideoAsyncHook

        async with MagicVideoAsyncHook(self.conn_id, client_request_id=self.client_request_id) as hook:
            while True:
                try:
                    outcome: Generation | MagicVideoError = await hook.aget_generation(self.generation_id)
                except MagicVideoError as exc:
                    outcome = exc
                try:
                    step = wait.after(outcome)
                except MagicVideoError as exc:
                    yield TriggerEvent({"status": "error", "generation_id": self.generation_id,
                                        "error": type(exc).__name__, "message": str(exc),
                                        "task_retry": exc.disposition.task_retry, "polls": wait.polls})
                    return
                if isinstance(step, Generation):
                    yield TriggerEvent({"status": "success", "generation_id": self.generation_id,
                                        "result": step.result(), "polls": wait.polls})
                    return
                await self.sleep(step)
