"""Campaign path ``two_tasks``: per row, submit with wait_for_completion=True, deferrable=True → deliver."""

from __future__ import annotations

from airflow.sdk import DAG
from campaign_rows import COMMON, POLL, RETRY, TIMEOUT, delivery_of, image_of, plan

from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator

with DAG(dag_id="bench_campaign_two_tasks", **COMMON):
    rows = plan("{{ params.n }}", "{{ params.destination }}")
    render = MagicVideoSubmitOperator.partial(task_id="render", wait_for_completion=True, deferrable=True,
                                              poll_interval=POLL, timeout=TIMEOUT, **RETRY,
                                              ).expand_kwargs(rows.map(image_of))
    MagicVideoDeliverOperator.partial(task_id="deliver", **RETRY).expand_kwargs(
        render.output.zip(rows).map(delivery_of))
