"""Child process of ``python -m bench.trigger_scale``: waits on N renders with ONE contender, in this process only.

Protocol (JSON lines; the real stdout is kept for it, everything printed or logged goes to stderr):

1. parent → child: ``{"contender", "port", "base_url", "poll", "render_seconds"}``
2. child → parent: ``{"ready": true}`` once every import is done (the parent measures the baseline RSS now)
3. parent → child: ``{"jobs": [[generation_id, start_offset_s], ...]}`` (renders already submitted)
4. child → parent: ``{"events": [[generation_id, status, epoch], ...], "cpu_s", "wall_s", "connects", ...}``

``cpu_s`` is user+system time of this process (all threads) from step 3 to the last event, so imports and
interpreter start-up are not counted. ``connects`` counts ``socket.connect()`` calls to the emulator's port:
aiohttp (through aiohappyeyeballs and ``loop.sock_connect``) and urllib3 (``requests``) both create every
TCP connection with it, so it is the number of TCP connections opened.

Contenders:

* ``magicvideo``: :class:`MagicVideoTrigger` (this project), ``run()`` driven directly in one event loop;
* ``http``: the HTTP provider's ``HttpEventTrigger`` with ``response_check_path`` = ``bench._harness_check.is_final``;
* ``sample``: the API doc's sample loop (blocking ``requests`` + ``time.sleep``), one thread per render.

With ``"via": "triggerrunner"`` in the config, the triggers run inside Airflow's ``TriggerRunner``
(``bench/_harness_runner.py``) instead of the minimal direct driver.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import resource
import socket
import sys
import threading
import time
from typing import Any

# Keep the real stdout for the protocol; stray prints and log handlers bound to stdout go to stderr.
_PROTO = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

_CONNECTS = itertools.count()  # next() on itertools.count is atomic under the GIL


def send(message: dict[str, Any]) -> None:
    _PROTO.write(json.dumps(message) + "\n")
    _PROTO.flush()


def receive() -> dict[str, Any]:
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("parent closed the pipe")
    return json.loads(line)


def count_connects(port: int) -> None:
    """Count every ``connect()`` of a Python socket to ``port`` (TCP opens towards the emulator)."""
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and len(address) >= 2 and address[1] == port:
            next(_CONNECTS)
        return original(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]


def connects_so_far() -> int:
    """Connections counted so far (reading an itertools.count without a lock: copy its repr)."""
    return int(repr(_CONNECTS)[6:-1])


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------------------- triggers
async def _drive(trigger: Any, gid: str, offset: float, events: list[list[Any]]) -> None:
    """What TriggerRunner does for one trigger, minus the DB: iterate ``run()`` to its end, keep the event."""
    await asyncio.sleep(offset)
    try:
        async for event in trigger.run():
            payload = event.payload if isinstance(event.payload, dict) else {"status": str(event.payload)}
            events.append([gid, payload.get("status"), time.time()])
    except Exception as exc:  # a trigger that raises is a failed wait, as the triggerer would record it
        events.append([gid, f"raised {type(exc).__name__}: {exc}"[:200], time.time()])


def make_magicvideo(jobs: list[list[Any]], cfg: dict[str, Any]) -> list[Any]:
    from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger

    end_time = time.time() + float(cfg["hard_timeout"])
    return [
        MagicVideoTrigger(gid, end_time=end_time, conn_id="magicvideo_default", poll_interval=cfg["poll"])
        for gid, _ in jobs
    ]


def make_http(jobs: list[list[Any]], cfg: dict[str, Any]) -> list[Any]:
    from airflow.providers.http.triggers.http import HttpEventTrigger

    return [
        HttpEventTrigger(
            response_check_path="bench._harness_check.is_final",
            http_conn_id="http_bench",
            method="GET",
            endpoint="v2/video/generations",
            data={"generation_id": gid},
            poll_interval=cfg["poll"],
        )
        for gid, _ in jobs
    ]


async def run_triggers(triggers: list[Any], jobs: list[list[Any]], timeout: float) -> list[list[Any]]:
    events: list[list[Any]] = []
    tasks = [
        asyncio.create_task(_drive(t, gid, offset, events))
        for t, (gid, offset) in zip(triggers, jobs, strict=True)
    ]
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=10)
    return events


# ------------------------------------------------------------------------------------------ sample loop
def run_sample_loop(jobs: list[list[Any]], cfg: dict[str, Any]) -> tuple[list[list[Any]], int]:
    """The AI/ML API doc's Python sample (``get_video`` and the loop of its ``main``), one thread per render.

    Copied from the doc (``tests/emulator/data/seed_sample_client.py``) with only ``api_key``/``base_url`` replaced
    and the hard-coded 15 s sleep replaced by the benchmark's poll interval.
    """
    import requests

    api_key = cfg["api_key"]
    base_url = cfg["base_url"]
    poll = cfg["poll"]
    events: list[list[Any]] = []

    def get_video(gen_id: str) -> Any:
        url = f"{base_url}/video/generations"
        params = {
            "generation_id": gen_id,
        }
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
        }
        response = requests.get(url, params=params, headers=headers)
        return response.json()

    def wait(gen_id: str, offset: float) -> None:
        time.sleep(offset)
        try:
            start_time = time.time()
            timeout = 1000
            while time.time() - start_time < timeout:
                response_data = get_video(gen_id)
                if response_data is None:
                    events.append([gen_id, "error", time.time()])
                    return
                status = response_data.get("status")
                if status in ["waiting", "queued", "generating"]:
                    time.sleep(poll)
                else:
                    events.append([gen_id, "success" if status == "completed" else status, time.time()])
                    return
            events.append([gen_id, "timeout", time.time()])
        except Exception as exc:
            events.append([gen_id, f"raised {type(exc).__name__}: {exc}"[:200], time.time()])

    threads = []
    started_threads = 0
    for gid, offset in jobs:
        thread = threading.Thread(target=wait, args=(gid, offset), daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # "can't start new thread"
            events.append([gid, f"raised RuntimeError: {exc}", time.time()])
            continue
        threads.append(thread)
        started_threads += 1
    deadline = time.monotonic() + float(cfg["hard_timeout"])
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return list(events), started_threads


# ----------------------------------------------------------------------------------------------- main
def main() -> None:
    cfg = receive()
    contender = cfg["contender"]
    # Import everything the contender needs before the baseline RSS is taken.
    import aiohttp  # noqa: F401
    import requests  # noqa: F401

    if contender in ("magicvideo", "http"):
        from airflow.providers.http.triggers.http import HttpEventTrigger  # noqa: F401
        if cfg.get("via") == "triggerrunner":
            from airflow.jobs.triggerer_job_runner import TriggerRunner  # noqa: F401

            import bench._harness_runner  # noqa: F401

        from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger  # noqa: F401
    count_connects(int(cfg["port"]))
    import gc

    gc.collect()
    send({"ready": True, "pid": os.getpid()})

    jobs = receive()["jobs"]
    cpu0, wall0 = cpu_seconds(), time.time()
    threads = 0
    if contender == "sample":
        events, threads = run_sample_loop(jobs, cfg)
    else:
        factory = make_magicvideo if contender == "magicvideo" else make_http
        driver = run_triggers
        if cfg.get("via") == "triggerrunner":
            from bench._harness_runner import run_via_trigger_runner as driver
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            events = loop.run_until_complete(driver(factory(jobs, cfg), jobs, float(cfg["hard_timeout"])))
        finally:
            loop.close()
    cpu1, wall1 = cpu_seconds(), time.time()
    send({
        "events": events,
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
        "t_start": wall0,
        "connects": connects_so_far(),
        "threads_started": threads,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    })


if __name__ == "__main__":
    main()
