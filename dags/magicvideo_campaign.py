"""Daily campaign: one template video per product in a manifest, delivered to a bucket.

    read_manifest ──► render[sku…] (mapped, deferrable) ──► deliver[sku…] (mapped) ──► write_summary

* The manifest (``dags/data/campaign.csv``: sku, image, template) is validated before anything is
  submitted, so a typo in a template name costs no credits.
* Each row becomes one mapped ``render`` task; they wait in the triggerer, not in worker slots.
  ``max_active_tis_per_dag`` bounds how many renders (and credits) are in flight at once.
* Videos land at ``<destination>/<ds>/<sku>.mp4`` through ``ObjectStoragePath``: ``s3://bucket/prefix``
  with an AWS connection, or a local folder for a dry run (a run triggered by hand has no ``ds``: the
  date it was triggered for).
* ``write_summary`` writes ``manifest.json`` beside the videos (one row per product: delivered, failed
  with the API's reason, or pending) and ``index.html``, a gallery a colleague can open from the bucket
  or a disk. It runs even when renders failed, lists them, and then fails the run so the failure shows.
* If a render fails (e.g. the API cannot use an image), ``deliver`` waits as ``upstream_failed`` rather
  than pairing the remaining videos with the wrong rows (the summary lists those rows as pending). Fix the
  row and clear the failed ``render`` task instance (with downstream): only that render is submitted again;
  the ones already paid for are reused, because a retry or clear reconnects to the stored generation.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_magicvideo.exceptions import MagicVideoError
from airflow_provider_magicvideo.gallery import write_gallery
from airflow_provider_magicvideo.generation import GenerationStatus
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.links import GENERATION_ID_KEY
from airflow_provider_magicvideo.manifest import build_manifest, task_label, write_manifest
from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from airflow_provider_magicvideo.templates import resolve_template

DATA = Path(__file__).parent / "data"
POLL_SECONDS = float(os.environ.get("MAGICVIDEO_POLL_SECONDS", "15"))
CONN_ID = "magicvideo_default"


def run_date(context: Any) -> str:
    """The run's date (``YYYY-MM-DD``) for the videos' folder: ``ds`` for a scheduled run; a run triggered
    by hand has no logical date (hence no ``ds``) in Airflow 3, so the date it was triggered for."""
    return context.get("ds") or context["dag_run"].run_after.strftime("%Y-%m-%d")


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
        ds = run_date(get_current_context())
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
        conn_id=CONN_ID,
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

    @task(trigger_rule="all_done")  # also after failed renders: the gallery must say which rows failed
    def write_summary(planned: list[dict[str, Any]], manifest: str, destination: str,
                      dest_conn_id: str | None) -> str:
        context = get_current_context()
        ti, ds = context["ti"], run_date(context)
        items = [summary_row(ti, index, row) for index, row in enumerate(planned)]
        # The batch operator's manifest schema (manifest.py): the gallery, and anyone else, read one format.
        summary = build_manifest(task_label(ti.dag_id, ti.task_id), items)
        folder = f"{destination.rstrip('/')}/{ds}"
        target = write_manifest(folder, summary, dest_conn_id or None)
        page = write_gallery(folder, summary, title=f"{Path(manifest).stem} · {ds}", conn_id=dest_conn_id or None)
        delivered = sum(item["status"] == "delivered" for item in items)
        print(f"Delivered {delivered} of {len(items)} videos, {summary['credits_used']:,} credits; "
              f"summary at {target}, gallery at {page}")
        if delivered < len(items):
            # After the files: the gallery says what went wrong, the failed run makes sure someone looks.
            failed = [f"{item['key']}: {item['status']} ({item['error']})" for item in items
                      if item["status"] != "delivered"]
            raise AirflowFailException(f"{len(failed)} of {len(items)} rows have no delivered video:\n"
                                       + "\n".join(failed))
        return target

    summary = write_summary(rows, "{{ params.manifest }}", "{{ params.destination }}", "{{ params.dest_conn_id }}")
    [render, deliver] >> summary  # XCom is read by map index, not passed: make the order explicit


def summary_row(ti: Any, index: int, row: dict[str, Any]) -> dict[str, Any]:
    """One manifest row from what the ``render`` and ``deliver`` task instances of map index ``index`` left in
    XCom; a render that left no result is asked about at the API (its id is pushed as soon as it exists)."""
    made = ti.xcom_pull(task_ids="render", map_indexes=index) or {}
    sent = ti.xcom_pull(task_ids="deliver", map_indexes=index) or {}
    generation_id = made.get("generation_id") or ti.xcom_pull(task_ids="render", key=GENERATION_ID_KEY,
                                                              map_indexes=index)
    item = {"key": row["sku"], "template": row["template"], "model": made.get("model"),
            "generation_id": generation_id, "status": "delivered", "uri": sent.get("uri"), "size": sent.get("size"),
            "sha256": sent.get("sha256"), "credits_used": made.get("credits_used"), "error": None}
    if sent:
        return item
    if made and ti.xcom_pull(task_ids="deliver", key=GENERATION_ID_KEY, map_indexes=index):
        # deliver pushes the id as it starts: it ran and failed
        return {**item, "status": "failed",
                "error": f"Rendered, but the delivery failed: see the log of deliver[{index}]"}
    if made:
        return {**item, "status": "pending",
                "error": "Rendered, not delivered: a render of this run failed (fix it and clear it with downstream)"}
    if not generation_id:
        return {**item, "status": "failed", "error": f"Not submitted: see the log of render[{index}]"}
    return {**item, **ask_about(str(generation_id), index)}


def ask_about(generation_id: str, index: int) -> dict[str, Any]:
    """Status, reason and credits of a generation whose render task ended without a result."""
    hook = MagicVideoHook(CONN_ID)
    try:
        generation = hook.get_generation(generation_id)
    except MagicVideoError as exc:
        return {"status": "failed", "error": f"The render failed; the API could not say why ({exc})"}
    finally:
        hook.close()
    if generation.status is GenerationStatus.ERROR:  # an error costs nothing
        return {"status": "failed", "credits_used": 0,
                "error": f"{generation.error_name or 'error'}: {generation.error_message or 'no reason given'}"}
    if not generation.is_terminal:
        return {"status": "pending", "error": f"Still {generation.raw_status} when render[{index}] stopped waiting"}
    return {"status": "failed", "credits_used": generation.credits_used,
            "error": f"The generation completed but render[{index}] failed: see its log"}
