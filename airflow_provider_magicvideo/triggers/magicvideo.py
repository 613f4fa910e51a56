"""Deferrable wait for a render: polls the status endpoint from the triggerer, not from a worker slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pendulum
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_magicvideo.generation import Generation, GenerationStatus
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoAsyncHook, PollTracker
from airflow_provider_magicvideo.hooks.retry import is_transient_poll_failure


def deadline_after(seconds: float) -> str:
    """Absolute UTC deadline ``seconds`` from now, as ISO text (what the trigger serializes)."""
    return pendulum.now("UTC").add(seconds=seconds).isoformat()


def _epoch(end_time: str | float | datetime) -> float:
    if isinstance(end_time, (int, float)):
        return float(end_time)
    if isinstance(end_time, datetime):
        return end_time.timestamp()
    return pendulum.parse(end_time).timestamp()  # type: ignore[union-attr]


class MagicVideoTrigger(BaseTrigger):
    """Wait until a render is ``completed`` or ``error``, or ``end_time`` passes; yield one event.

    Serializes only plain values: the generation id, the connection id, the poll interval, the absolute
    ``end_time`` (UTC ISO, fixed at first deferral so a triggerer restart never extends the wait) and
    the failure tolerance. Never the API key, never a URL.

    The event's ``status`` is ``success`` (with ``video_url``, ``url_expires_at``, ``credits_used``),
    ``error`` (with the API's ``error_name``/``error_message``, or the poll failure; ``fatal`` is False
    only when polling gave up after too many transient failures, so a task retry may help) or ``timeout``.

    :param max_consecutive_failures: failed polls (network, 5xx, malformed JSON) tolerated in a row,
        with exponential backoff, before the wait fails.
    """

    def __init__(
        self,
        generation_id: str,
        end_time: str | float,
        conn_id: str = MagicVideoAsyncHook.default_conn_name,
        poll_interval: float = 15.0,
        max_consecutive_failures: int = 5,
        client_request_id: str | None = None,
    ) -> None:
        super().__init__()
        self.generation_id = generation_id
        self.end_time = end_time
        self.conn_id = conn_id
        self.poll_interval = float(poll_interval)
        self.max_consecutive_failures = int(max_consecutive_failures)
        self.client_request_id = client_request_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "generation_id": self.generation_id,
                "end_time": self.end_time,
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "max_consecutive_failures": self.max_consecutive_failures,
                "client_request_id": self.client_request_id,
            },
        )

    def _event(self, status: str, message: str, generation: Generation | None = None, **extra: Any) -> TriggerEvent:
        payload: dict[str, Any] = {"status": status, "generation_id": self.generation_id, "message": message}
        if generation is not None:
            expires = generation.url_expires_at
            payload.update(
                generation_status=generation.raw_status,
                video_url=generation.video_url,
                url_expires_at=expires.isoformat() if expires else None,
                credits_used=generation.credits_used,
                error_name=generation.error_name,
                error_message=generation.error_message,
            )
        payload.update(extra)
        return TriggerEvent(payload)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = _epoch(self.end_time)
        tracker = PollTracker(self.generation_id, self.max_consecutive_failures, self.log)
        self.log.info("Waiting for generation %s (poll every %gs, deadline %s)",
                      self.generation_id, self.poll_interval, self.end_time)
        async with MagicVideoAsyncHook(self.conn_id, client_request_id=self.client_request_id) as hook:
            while True:
                try:
                    generation = await hook.aget_generation(self.generation_id)
                except Exception as exc:  # CancelledError is a BaseException and passes through
                    try:
                        delay = tracker.failed(exc, self.poll_interval)
                    except Exception as fatal:
                        # Too many transient failures in a row may pass with a task retry (as on the
                        # blocking path); auth, credit, not-found and validation answers will not.
                        yield self._event("error", f"Generation {self.generation_id}: status polling failed: "
                                                   f"{fatal}", fatal=not is_transient_poll_failure(fatal),
                                          polls=tracker.polls)
                        return
                else:
                    tracker.observed(generation)
                    # PollTracker.observed already logged the final status change: no second line here.
                    if generation.status is GenerationStatus.COMPLETED:
                        yield self._event("success", f"Generation {self.generation_id} completed.", generation,
                                          polls=tracker.polls)
                        return
                    if generation.status is GenerationStatus.ERROR:
                        yield self._event(
                            "error",
                            f"Generation {self.generation_id} failed: {generation.error_name or 'error'}: "
                            f"{generation.error_message or 'the API gave no message'}",
                            generation, fatal=True, polls=tracker.polls,
                        )
                        return
                    delay = self.poll_interval
                remaining = deadline - time.time()
                if remaining <= 0:
                    yield self._event("timeout", f"Generation {self.generation_id} was not done by {self.end_time}.",
                                      end_time=str(self.end_time),
                                      waited=tracker.elapsed, last_status=tracker.last_status, polls=tracker.polls)
                    return
                await asyncio.sleep(min(delay, remaining))
