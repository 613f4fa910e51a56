"""Campaign path ``batch_operator``: ONE MagicVideoBatchRenderOperator task renders and delivers every row.

The operator is new (``operators/batch.py``); until it is importable this file defines no DAG and the benchmark
skips the path (``bench/campaign_paths.py``). Its rows are the shared plan's (``key``, ``image``,
``destination``): adjust the arguments below if the operator's signature differs when it lands.
"""

from __future__ import annotations

from airflow.sdk import DAG
from campaign_rows import COMMON, POLL, RETRY, TIMEOUT, plan

try:
    from airflow_provider_magicvideo.operators.batch import MagicVideoBatchRenderOperator
except ImportError:  # not in this checkout yet: no DAG, no import error in the dag-processor
    MagicVideoBatchRenderOperator = None

if MagicVideoBatchRenderOperator is not None:
    with DAG(dag_id="bench_campaign_batch_operator", **COMMON):
        MagicVideoBatchRenderOperator(task_id="render", rows=plan("{{ params.n }}", "{{ params.destination }}"),
                                      poll_interval=POLL, timeout=TIMEOUT, **RETRY)
