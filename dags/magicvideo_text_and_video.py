"""Text-to-video, then video-to-video: a drone-show clip from a prompt, re-used inside another template.

    drone_show (text-to-video, deferrable) ──► remix (video-to-video of that clip) ──► deliver_both

The submit operator can wait itself (``wait_for_completion=True``); with ``deferrable=True`` the wait
runs in the triggerer. Its return value carries a fresh ``video_url``, which feeds the next render
directly: the API fetches it within its 10-minute lifetime.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator

POLL_SECONDS = float(os.environ.get("MAGICVIDEO_POLL_SECONDS", "15"))

with DAG(
    dag_id="magicvideo_text_and_video",
    description="Prompt → drone-show video → the same clip inside a video-to-video template",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["magicvideo", "example"],
    params={
        "prompt": Param("HELLO AIRFLOW", type="string", description="Text drawn by the drones"),
        "remix_template": Param("Tokyo Billboard", type="string", description="video-to-video template"),
        "output_dir": Param("/tmp/magicvideo", type="string"),
    },
) as dag:
    drone_show = MagicVideoSubmitOperator(
        task_id="drone_show",
        model="magic/text-to-video",
        prompt="{{ params.prompt }}",
        template="Shanghai Drone Show",
        wait_for_completion=True,
        deferrable=True,
        poll_interval=POLL_SECONDS,
    )

    remix = MagicVideoSubmitOperator(
        task_id="remix",
        model="magic/video-to-video",
        video="{{ ti.xcom_pull(task_ids='drone_show', key='video_url') }}",
        template="{{ params.remix_template }}",
        wait_for_completion=True,
        deferrable=True,
        poll_interval=POLL_SECONDS,
    )

    deliver_show = MagicVideoDeliverOperator(
        task_id="deliver_drone_show",
        generation_id=drone_show.output,
        destination="{{ params.output_dir }}/{{ ds }}/drone-show.mp4",
    )
    deliver_remix = MagicVideoDeliverOperator(
        task_id="deliver_remix",
        generation_id=remix.output,
        destination="{{ params.output_dir }}/{{ ds }}/remix.mp4",
    )

    drone_show >> remix
