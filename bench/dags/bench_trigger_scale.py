"""DAGs of ``python -m bench.trigger_scale --triggerer``: N mapped deferrable waits on renders submitted beforehand.

The generation ids come in the run ``conf`` (``{"ids": [...]}``); one tiny upstream task hands them to
``expand``. The poll interval comes from ``MAGICVIDEO_BENCH_POLL`` (set by the benchmark for every process).

* ``bench_trigger_scale_magicvideo``: ``MagicVideoSensor(deferrable=True)`` → ``MagicVideoTrigger``.
* ``bench_trigger_scale_http``: a tiny operator deferring to the HTTP provider's ``HttpEventTrigger`` on the
  same status endpoint, with ``bench._harness_check.is_final`` as the response check (the triggerer needs
  the repository root on its ``PYTHONPATH``); ``HttpSensor(deferrable=True)`` cannot check the JSON body.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.http.triggers.http import HttpEventTrigger
from airflow.sdk import DAG, BaseOperator, get_current_context, task

from airflow_provider_magicvideo.sensors.magicvideo import MagicVideoSensor

POLL = float(os.environ.get("MAGICVIDEO_BENCH_POLL", "5"))
WAIT_TIMEOUT = 4 * 3600  # seconds; the benchmark releases the renders long before this
MAX_ACTIVE = 5000
COMMON: dict[str, Any] = {
    "schedule": None, "start_date": pendulum.datetime(2025, 1, 1, tz="UTC"), "catchup": False,
    "max_active_runs": 1, "max_active_tasks": MAX_ACTIVE, "tags": ["magicvideo-bench"],
}


@task
def generation_ids() -> list[str]:
    """The render ids the benchmark submitted, from the run conf."""
    return [str(gid) for gid in get_current_context()["dag_run"].conf["ids"]]


class HttpEventWait(BaseOperator):
    """Defer at once to ``HttpEventTrigger`` polling ``GET /v2/video/generations?generation_id=ID``."""

    template_fields = ("generation_id",)

    def __init__(self, *, generation_id: str, poll_interval: float = POLL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.generation_id = generation_id
        self.poll_interval = poll_interval

    def execute(self, context: Any) -> None:
        self.defer(
            trigger=HttpEventTrigger(
                response_check_path="bench._harness_check.is_final", http_conn_id="http_bench", method="GET",
                endpoint="v2/video/generations", data={"generation_id": self.generation_id},
                poll_interval=self.poll_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=WAIT_TIMEOUT),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        if not event or event.get("status") != "success":
            raise RuntimeError(f"render {self.generation_id}: unexpected event {str(event)[:300]}")


with DAG(dag_id="bench_trigger_scale_magicvideo", **COMMON):
    MagicVideoSensor.partial(
        task_id="wait", conn_id="magicvideo_default", deferrable=True, poke_interval=POLL, timeout=WAIT_TIMEOUT,
    ).expand(generation_id=generation_ids())

with DAG(dag_id="bench_trigger_scale_http", **COMMON):
    HttpEventWait.partial(task_id="wait").expand(generation_id=generation_ids())
