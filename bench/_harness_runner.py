"""``--via triggerrunner``: drive triggers through Airflow's own ``TriggerRunner`` (in the child process).

What the triggerer's async half does for each trigger is used as is: ``RunTrigger`` workloads with the
trigger's ``serialize()`` kwargs encrypted by ``Trigger.encrypt_kwargs`` (Fernet), ``create_triggers``
(class lookup, kwargs decryption and decoding, one task per trigger), ``run_trigger`` (greenback portal, log
context, span, "Trigger fired event" log line) and ``cleanup_finished_triggers``, on the same 1 s cadence as
``TriggerRunner.arun``. Left out: the supervisor process, its comms socket and the metadata database (events
are stamped and dropped where ``sync_state_to_supervisor`` would send them).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any


async def run_via_trigger_runner(triggers: list[Any], jobs: list[list[Any]], timeout: float) -> list[list[Any]]:
    from airflow.executors.workloads.trigger import RunTrigger
    from airflow.jobs.triggerer_job_runner import TriggerRunner
    from airflow.models.trigger import Trigger

    runner = TriggerRunner()
    events: list[list[Any]] = []
    generation_of: dict[int, str] = {}

    class StampedEvents(deque):
        """The runner's outbound event queue; stamps each event the moment ``run_trigger`` queues it."""

        def append(self, entry: Any) -> None:
            payload = entry.event.payload
            status = payload.get("status") if isinstance(payload, dict) else str(payload)
            events.append([generation_of[entry.trigger_id], status, time.time()])
            super().append(entry)

    runner.events = StampedEvents()
    loop = asyncio.get_running_loop()
    for trigger_id, (trigger, (gid, offset)) in enumerate(zip(triggers, jobs, strict=True), start=1):
        classpath, kwargs = trigger.serialize()
        workload = RunTrigger(id=trigger_id, classpath=classpath, encrypted_kwargs=Trigger.encrypt_kwargs(kwargs))
        generation_of[trigger_id] = gid
        loop.call_later(offset, runner.to_create.append, workload)
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await runner.cleanup_finished_triggers()
        runner.events.clear()  # sync_state_to_supervisor would send these to the supervisor
        for trigger_id, exc in runner.failed_triggers:
            events.append([generation_of[trigger_id], f"failed: {exc!r}"[:200], time.time()])
        runner.failed_triggers.clear()
        await runner.create_triggers()
        if len(events) >= len(jobs) and not runner.triggers:
            break
        await asyncio.sleep(1.0)  # TriggerRunner.arun: anyio.move_on_after(1)
    for details in runner.triggers.values():
        details["task"].cancel()
    return events
