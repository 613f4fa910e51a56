"""The campaign in one task per product: image → render → delivered MP4, mapped over the manifest's rows.

    plan ──► render[sku…] (MagicVideoRenderOperator, mapped, deferrable) ──► summary

The same manifest as ``magicvideo_campaign`` (``dags/data/campaign.csv``: sku, image, template). Each row is
one ``render`` task that submits, waits in the triggerer (no worker slot while the video renders) and
delivers ``<destination>/<ds>/<sku>.mp4`` itself. ``retries=2`` is safe: a retry, after a crash or a failed
delivery, reconnects to the generation it already paid for and only delivers again.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_magicvideo.operators.render import MagicVideoRenderOperator
from airflow_provider_magicvideo.templates import resolve_template

DATA = Path(__file__).parent / "data"
POLL_SECONDS = float(os.environ.get("MAGICVIDEO_POLL_SECONDS", "15"))

with DAG(
    dag_id="magicvideo_campaign_render",
    description="One task per product: render its template video and deliver it",
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
    },
) as dag:

    @task
    def plan(manifest: str, destination: str) -> list[dict[str, Any]]:
        """One row of render arguments per product; a bad template fails here, before any credit is spent.

        Values mapped from an XCom are not templated again, so each destination is complete here.
        """
        path = Path(manifest)
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        return [{"image": row["image"] if "://" in row["image"] else str(path.parent / row["image"]),
                 "template": resolve_template(row["template"]),
                 "destination": f"{destination.rstrip('/')}/{row['sku']}.mp4"} for row in rows]

    render = MagicVideoRenderOperator.partial(
        task_id="render",
        dest_conn_id="{{ params.dest_conn_id or '' }}",
        poll_interval=POLL_SECONDS,
        timeout=30 * 60,
        max_active_tis_per_dag=8,  # bounds the renders (and credits) in flight
        retries=2,
    ).expand_kwargs(plan("{{ params.manifest }}", "{{ params.destination }}/{{ ds }}"))

    @task
    def summary(videos: list[dict[str, Any]]) -> dict[str, Any]:
        credits = sum(video["credits_used"] or 0 for video in videos)
        print(f"Delivered {len(videos)} videos for {credits:,} credits: {[v['uri'] for v in videos]}")
        return {"videos": [{k: v[k] for k in ("generation_id", "template", "uri", "sha256")} for v in videos],
                "credits_used": credits}

    summary(render.output)
