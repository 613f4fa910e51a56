"""Daily campaign: one template video per product in a manifest, delivered to a bucket.

    read_manifest ──► render[sku…] (mapped, deferrable) ──► deliver[sku…] (mapped) ──► write_summary

* The manifest (``dags/data/campaign.csv``: sku, image, template) is validated before anything is
  submitted, so a typo in a template name costs no credits.
* Each row becomes one mapped ``render`` task; they wait in the triggerer, not in worker slots.
  ``max_active_tis_per_dag`` bounds how many renders (and credits) are in flight at once.
* Videos land at ``<destination>/<ds>/<sku>.mp4`` through ``ObjectStoragePath``: ``s3://bucket/prefix``
  with an AWS connection, or a local folder for a dry run.
* ``write_summary`` writes ``manifest.json`` beside the videos: what was delivered and the credits used.
* If a render fails (e.g. the API cannot use an image), ``deliver`` waits as ``upstream_failed`` rather
  than pairing the remaining videos with the wrong rows. Fix the row and clear the failed ``render``
  task instance (with downstream): only that render is submitted again; the ones already paid for are
  reused, because a retry or clear reconnects to the stored generation.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_magicvideo.delivery import as_destination
from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from airflow_provider_magicvideo.templates import resolve_template

DATA = Path(__file__).parent / "data"
POLL_SECONDS = float(os.environ.get("MAGICVIDEO_POLL_SECONDS", "15"))


def render_kwargs(row: dict[str, Any]) -> dict[str, Any]:
    return {"image": row["image"], "template": row["template"]}


def delivery_kwargs(pair: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
    render, row = pair
    return {"generation_id": render, "destination": row["destination"]}


with DAG(
    dag_id="magicvideo_campaign",
    description="Render one template video per product image and deliver them to a bucket",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["magicvideo", "example"],
    params={
        "manifest": Param(str(DATA / "campaign.csv"), type="string", description="CSV or JSON: sku, image, template"),
        "destination": Param("s3://magicvideo-campaigns/videos", type="string",
                             description="Bucket/prefix URI (s3://…, file://…) or a local folder"),
        "dest_conn_id": Param("aws_default", type="string",
                              description="Connection for the destination; empty for local folders"),
    },
) as dag:

    @task
    def read_manifest(manifest: str, destination: str) -> list[dict[str, Any]]:
        """Rows with absolute image paths, exact template names and a destination per video."""
        path = Path(manifest)
        text = path.read_text(encoding="utf-8")
        rows = json.loads(text) if path.suffix == ".json" else list(csv.DictReader(text.splitlines()))
        ds = get_current_context()["ds"]
        planned, problems = [], []
        for number, row in enumerate(rows, start=1):
            try:
                template = resolve_template(row.get("template"))
            except ValueError as exc:
                problems.append(f"row {number} ({row.get('sku')}): {exc}")
                continue
            image = row["image"]
            if "://" not in image and not Path(image).is_absolute():
                image = str(path.parent / image)
            planned.append({"sku": row["sku"], "image": image, "template": template,
                            "destination": f"{destination.rstrip('/')}/{ds}/{row['sku']}.mp4"})
        if problems:
            raise ValueError("Fix the manifest before spending credits:\n" + "\n".join(problems))
        return planned

    rows = read_manifest("{{ params.manifest }}", "{{ params.destination }}")

    render = MagicVideoSubmitOperator.partial(
        task_id="render",
        wait_for_completion=True,
        deferrable=True,
        poll_interval=POLL_SECONDS,
        timeout=30 * 60,
        max_active_tis_per_dag=8,
        retries=2,  # safe: a retry reconnects to the render it already paid for
    ).expand_kwargs(rows.map(render_kwargs))

    deliver = MagicVideoDeliverOperator.partial(
        task_id="deliver",
        dest_conn_id="{{ params.dest_conn_id }}",
        max_active_tis_per_dag=8,
        retries=2,
    ).expand_kwargs(render.output.zip(rows).map(delivery_kwargs))

    @task
    def write_summary(deliveries: list[dict[str, Any]], renders: list[dict[str, Any]],
                      planned: list[dict[str, Any]], destination: str, dest_conn_id: str | None) -> str:
        items = [
            {"sku": row["sku"], "template": row["template"], "generation_id": made["generation_id"],
             "credits_used": made["credits_used"], "uri": sent["uri"], "size": sent["size"],
             "sha256": sent["sha256"]}
            for row, made, sent in zip(planned, renders, deliveries, strict=True)
        ]
        summary = {"ds": get_current_context()["ds"], "videos": items,
                   "credits_used": sum(item["credits_used"] or 0 for item in items)}
        target = as_destination(f"{destination.rstrip('/')}/{summary['ds']}/manifest.json", dest_conn_id or None)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(summary, indent=2))
        print(f"Delivered {len(items)} videos, {summary['credits_used']:,} credits; summary at {target}")
        return str(target)

    write_summary(deliver.output, render.output, rows, "{{ params.destination }}", "{{ params.dest_conn_id }}")
