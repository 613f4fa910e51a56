"""Quickstart: one product image → AI/ML API template video → an MP4 in a local folder.

    submit ──► wait (deferrable: no worker slot while the render runs) ──► deliver ──► where_is_it

Needs a ``magicvideo`` connection (``magicvideo_default``) whose password is your AI/ML API key. To try
it offline, run ``make demo``: it starts the bundled API emulator and runs this DAG against it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from airflow_provider_magicvideo.sensors.magicvideo import MagicVideoSensor

SAMPLE_IMAGE = str(Path(__file__).parent / "data" / "products" / "sku-1001.png")
# Real renders take ~3 minutes, so poll every 15 s; the offline demo sets a shorter interval.
POLL_SECONDS = float(os.environ.get("MAGICVIDEO_POLL_SECONDS", "15"))

with DAG(
    dag_id="magicvideo_quickstart",
    description="Render one image into a template video and save the MP4 locally",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["magicvideo", "example"],
    params={
        "image": Param(SAMPLE_IMAGE, type="string", description="http(s) URL, local path or s3:// URI"),
        "template": Param("Times Square Billboard", type="string", description="Template name"),
        "output_dir": Param("/tmp/magicvideo", type="string", description="Folder (or file://, s3:// URI)"),
    },
) as dag:
    submit = MagicVideoSubmitOperator(
        task_id="submit",
        image="{{ params.image }}",
        template="{{ params.template }}",
    )

    wait = MagicVideoSensor(
        task_id="wait",
        generation_id=submit.output,  # the generation id the submit task returned
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=20 * 60,
    )

    deliver = MagicVideoDeliverOperator(
        task_id="deliver",
        generation_id=submit.output,
        destination="{{ params.output_dir }}/{{ run_id | replace(':', '-') }}.mp4",
    )

    @task
    def where_is_it(delivered: dict) -> str:
        print(f"Your video: {delivered['uri']} ({delivered['size']:,} bytes, sha256 {delivered['sha256'][:12]}…)")
        return delivered["uri"]

    wait >> deliver
    where_is_it(deliver.output)
