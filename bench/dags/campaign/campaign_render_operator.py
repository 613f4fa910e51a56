"""Campaign path ``render_operator``: one mapped MagicVideoRenderOperator per row (submit, defer, deliver)."""

from __future__ import annotations

from airflow.sdk import DAG
from campaign_rows import COMMON, POLL, RETRY, TIMEOUT, plan, render_of

from airflow_provider_magicvideo.operators.render import MagicVideoRenderOperator

with DAG(dag_id="bench_campaign_render_operator", **COMMON):
    rows = plan("{{ params.n }}", "{{ params.destination }}")
    MagicVideoRenderOperator.partial(task_id="render", poll_interval=POLL, timeout=TIMEOUT, **RETRY,
                                     ).expand_kwargs(rows.map(render_of))
