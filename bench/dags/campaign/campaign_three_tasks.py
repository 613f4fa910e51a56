"""Campaign path ``three_tasks``: per row, submit (no wait) → deferrable MagicVideoSensor → deliver."""

from __future__ import annotations

from airflow.sdk import DAG
from campaign_rows import COMMON, POLL, RETRY, TIMEOUT, delivery_of, image_of, plan

from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from airflow_provider_magicvideo.sensors.magicvideo import MagicVideoSensor

with DAG(dag_id="bench_campaign_three_tasks", **COMMON):
    rows = plan("{{ params.n }}", "{{ params.destination }}")
    submit = MagicVideoSubmitOperator.partial(task_id="submit", wait_for_completion=False, **RETRY,
                                              ).expand_kwargs(rows.map(image_of))
    wait = MagicVideoSensor.partial(task_id="wait", deferrable=True, poke_interval=POLL, timeout=TIMEOUT,
                                    **RETRY).expand(generation_id=submit.output)
    MagicVideoDeliverOperator.partial(task_id="deliver", **RETRY).expand_kwargs(wait.output.zip(rows).map(delivery_of))
