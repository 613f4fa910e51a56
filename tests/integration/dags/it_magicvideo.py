"""DAGs of the real-deployment tier (tests/integration). Side-effect free; everything comes from ``conf``.

* ``it_campaign``   - N mapped deferrable renders (slow emulator) + N mapped deliveries to a local folder.
* ``it_deadline``   - one deferrable render whose ``timeout`` (35 s) is shorter than the emulator's render time.
* ``it_sync_wait``  - one blocking render (``deferrable=False``) with retries: the worker-crash scenario.
* ``it_faults``     - N mapped deferrable renders (fast emulator) + an optional pause + N deliveries.

Connections: ``magicvideo_default`` (slow renders) and ``magicvideo_fast`` (short renders, fault profiles).
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator

IMAGES = sorted((Path(__file__).resolve().parents[3] / "dags" / "data" / "products").glob("*.png"))
POLL_SECONDS = 2
START = pendulum.datetime(2025, 1, 1, tz="UTC")
COMMON: dict[str, Any] = {"schedule": None, "start_date": START, "catchup": False, "tags": ["magicvideo-it"]}


@task
def plan(n: int | str, destination: str) -> list[dict[str, Any]]:
    """One render per item: an image of the shipped catalogue and a destination file."""
    run_id = get_current_context()["run_id"]
    folder = Path(destination) / "".join(c if c.isalnum() else "_" for c in run_id)
    return [{"image": str(IMAGES[i % len(IMAGES)]), "destination": str(folder / f"item-{i:02d}.mp4")}
            for i in range(int(n))]


@task
def hold(seconds: int | str, renders: Any) -> int:
    """Sleep between render and delivery (lets presigned URLs expire)."""
    time.sleep(float(seconds))
    return len(list(renders))


def _image(item: dict[str, Any]) -> dict[str, Any]:
    return {"image": item["image"]}


def _delivery(pair: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
    render, item = pair
    return {"generation_id": render, "destination": item["destination"]}


def _render_then_deliver(conn_id: str, *, retries: int, hold_seconds: bool) -> None:
    items = plan("{{ params.n }}", "{{ params.destination }}")
    render = MagicVideoSubmitOperator.partial(
        task_id="render", conn_id=conn_id, wait_for_completion=True, deferrable=True,
        poll_interval=POLL_SECONDS, timeout=600, retries=retries, retry_delay=timedelta(seconds=2),
    ).expand_kwargs(items.map(_image))
    deliver = MagicVideoDeliverOperator.partial(
        task_id="deliver", conn_id=conn_id, retries=retries, retry_delay=timedelta(seconds=2),
    ).expand_kwargs(render.output.zip(items).map(_delivery))
    if hold_seconds:
        hold("{{ params.hold_seconds }}", render.output) >> deliver


with DAG(dag_id="it_campaign", max_active_tasks=64,
         params={"n": Param(20, type="integer"), "destination": Param("/tmp", type="string")}, **COMMON):
    _render_then_deliver("magicvideo_default", retries=1, hold_seconds=False)

with DAG(dag_id="it_faults", max_active_tasks=64,
         params={"n": Param(3, type="integer"), "destination": Param("/tmp", type="string"),
                  "hold_seconds": Param(0, type="integer")}, **COMMON):
    _render_then_deliver("magicvideo_fast", retries=2, hold_seconds=True)

with DAG(dag_id="it_deadline", **COMMON):
    MagicVideoSubmitOperator(
        task_id="render", image=str(IMAGES[0]), wait_for_completion=True, deferrable=True,
        poll_interval=POLL_SECONDS, timeout=35, retries=0,
    )

with DAG(dag_id="it_sync_wait", **COMMON):
    MagicVideoSubmitOperator(
        task_id="render", image=str(IMAGES[0]), wait_for_completion=True, deferrable=False,
        poll_interval=POLL_SECONDS, timeout=300, retries=2, retry_delay=timedelta(seconds=2),
    )
