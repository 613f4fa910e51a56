"""The campaign in chunks: one task instance renders and delivers a whole chunk of products.

    chunk ──► render_chunk[0…] (MagicVideoBatchRenderOperator, mapped over chunks, deferrable) ──► summary

The same CSV as ``magicvideo_campaign`` (``dags/data/campaign.csv``: sku, image, template), split into chunks
of ``chunk_size`` rows (say 50-500 for a real campaign): far fewer task instances than one per video. Each chunk
checks all its rows before submitting any, renders at most ``max_in_flight`` at once, waits on one trigger,
delivers ``<destination>/<ds>/<sku>.mp4`` and writes ``manifest-<map index>.json`` beside the videos.
``retries=2`` is safe: a retry submits only the rows whose render failed (not billed) and delivers only what
is missing.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_magicvideo.operators.batch import MagicVideoBatchRenderOperator

DATA = Path(__file__).parent / "data"
POLL_SECONDS = float(os.environ.get("MAGICVIDEO_POLL_SECONDS", "15"))

with DAG(
    dag_id="magicvideo_campaign_batch",
    description="Render the campaign's product videos in chunks, one task per chunk, with a manifest each",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["magicvideo", "example"],
    params={
        "manifest": Param(str(DATA / "campaign.csv"), type="string", description="CSV: sku, image, template"),
        "destination": Param("s3://magicvideo-campaigns/videos", type="string",
                             description="Bucket/prefix URI (s3://…, file://…) or a local folder"),
        "dest_conn_id": Param("aws_default", type="string",
                              description="Connection for the destination; empty for local folders"),
        "chunk_size": Param(100, type="integer", minimum=1, maximum=500, description="Rows per task instance"),
    },
) as dag:

    @task
    def chunk(manifest: str, chunk_size: str) -> list[list[dict[str, Any]]]:
        """The CSV's rows as batch rows (key = sku), in chunks; the operator validates every row itself."""
        path = Path(manifest)
        rows = [{"key": row["sku"], "template": row["template"],
                 "image": row["image"] if "://" in row["image"] else str(path.parent / row["image"])}
                for row in csv.DictReader(path.read_text(encoding="utf-8").splitlines())]
        size = int(chunk_size)
        return [rows[start:start + size] for start in range(0, len(rows), size)]

    render_chunk = MagicVideoBatchRenderOperator.partial(
        task_id="render_chunk",
        destination="{{ params.destination }}/{{ ds }}",
        dest_conn_id="{{ params.dest_conn_id or '' }}",
        poll_interval=POLL_SECONDS,
        timeout=60 * 60,
        max_in_flight=20,  # submits in flight per chunk: bounds the credits committed at once
        max_active_tis_per_dag=4,
        retries=2,
    ).expand(rows=chunk("{{ params.manifest }}", "{{ params.chunk_size }}"))

    @task
    def summary(chunks: list[dict[str, Any]]) -> dict[str, Any]:
        totals = {name: sum(c[name] for c in chunks) for name in ("rows", "delivered", "failed", "credits_used")}
        print(f"{totals['delivered']} of {totals['rows']} videos delivered for {totals['credits_used']:,} credits; "
              f"manifests: {[c['manifest_uri'] for c in chunks]}")
        return {**totals, "manifests": [c["manifest_uri"] for c in chunks]}

    summary(render_chunk.output)
