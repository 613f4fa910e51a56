"""Stand-ins for what Airflow hands a task, shared by the operator, sensor and billing tests."""

from __future__ import annotations

import json
from typing import Any


class Store(dict):
    """A durable ``task_state_store``: survives the task's tries and keeps JSON, as Airflow's does. The
    ``set()`` calls numbered in ``fail_on`` (1-based) fail, as a store whose API server does not answer."""

    def __init__(self, initial: dict[str, Any] | None = None, *, fail_on: frozenset[int] = frozenset()) -> None:
        super().__init__(initial or {})
        self.fail_on = fail_on
        self.sets = 0

    def set(self, key: str, value: Any) -> None:
        self.sets += 1
        if self.sets in self.fail_on:
            raise ConnectionError("task_state_store: the API server did not answer")
        self[key] = json.loads(json.dumps(value))

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key, default)


class EmulatorTime:
    """A hook's clock and sleep on the emulator's paused clock: each sleep advances the emulator, so log rows
    become visible after their ingestion delay without a real wait."""

    def __init__(self, emulator) -> None:
        self.emulator = emulator
        self.now = emulator.pause_clock()
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now = self.emulator.advance_clock(seconds)


async def first_event(trigger: Any) -> dict[str, Any]:
    """The payload of the first event a trigger yields, the trigger closed after it."""
    run = trigger.run()
    try:
        return (await run.__anext__()).payload
    finally:
        await run.aclose()
