"""Shared by the campaign benchmark's DAGs (``bench/dags/campaign``, on ``sys.path`` as the DAGs folder).

Everything a run needs comes from its ``conf`` (``n``, ``destination``); the poll interval from
``MAGICVIDEO_BENCH_POLL``, which the benchmark sets for every Airflow process. No DAG is defined here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, task

# The shipped product images (repository root / dags / data / products): the emulator renders each with the
# model's default template, pre-rendered in its ``fast`` mode.
IMAGES = sorted((Path(__file__).resolve().parents[3] / "dags" / "data" / "products").glob("*.png"))
POLL = float(os.environ.get("MAGICVIDEO_BENCH_POLL", "10"))
TIMEOUT = 4 * 3600  # seconds per wait: far beyond any run; the benchmark's own run timeout fails first
COMMON: dict[str, Any] = {
    "schedule": None, "start_date": pendulum.datetime(2025, 1, 1, tz="UTC"), "catchup": False,
    "max_active_runs": 1, "max_active_tasks": 10_000, "tags": ["magicvideo-bench"],
    "params": {"n": Param(10, type="integer"), "destination": Param("/tmp", type="string")},
}
# One retry: a task lost to a loaded machine (heartbeat) is retried as in production; the benchmark reports
# every retried task instance, and the emulator's POST count shows whether a retry paid twice.
RETRY: dict[str, Any] = {"retries": 1, "retry_delay": pendulum.duration(seconds=5)}


def row_file(destination: str, index: int) -> str:
    """Where row ``index``'s MP4 goes: the benchmark checks exactly these files."""
    return f"{destination.rstrip('/')}/row-{index:04d}.mp4"


@task
def plan(n: int | str, destination: str) -> list[dict[str, Any]]:
    """One row per render: ``key``, an image of the catalogue and its destination file."""
    return [{"key": f"row-{i:04d}", "image": str(IMAGES[i % len(IMAGES)]), "destination": row_file(destination, i)}
            for i in range(int(n))]


def image_of(row: dict[str, Any]) -> dict[str, Any]:
    return {"image": row["image"]}


def render_of(row: dict[str, Any]) -> dict[str, Any]:
    return {"image": row["image"], "destination": row["destination"]}


def delivery_of(pair: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
    generation, row = pair
    return {"generation_id": generation, "destination": row["destination"]}
