"""DAGs for the operator and sensor tests (run with ``dag.test()`` against the emulator).

Side-effect free: ``dag.test()`` re-parses every file of the test bundle. Inputs come from
``params`` (override with ``run_conf``); poll intervals are small constants.

Failures are recorded in ``FAILURES`` ((dag_id, task_id, map_index, try_number) → exception text) by the
listener that ``operator_support.load_dags`` registers (``tests/airflow_compat.py``: task callbacks see no
exception under ``dag.test()`` before Airflow 3.3), so a test can read the exact error a task failed with:
``dag.test()`` runs tasks in the test's own process, with these very DAG objects.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, task

from airflow_provider_magicvideo.emulator.testing import data_uri, png_bytes
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from airflow_provider_magicvideo.operators.render import MagicVideoRenderOperator
from airflow_provider_magicvideo.sensors.magicvideo import MagicVideoSensor

POLL = 1.0  # the shortest interval the operators accept
IMAGE = data_uri(png_bytes((200, 30, 90), (64, 48)))
IMAGES = [data_uri(png_bytes((i * 25, 120, 250 - i * 25), (64, 48))) for i in range(10)]
RENDERS_ASSET = Asset("magicvideo://renders/x")
STRICT_CONN_ID = "magicvideo_strict"

FAILURES: dict[tuple[str, str, int, int], str] = {}


class CrashOnceSubmitOperator(MagicVideoSubmitOperator):
    """Dies right after the API created the generation (its id already recorded), on the first try only."""

    def get_hook(self, context: Any) -> Any:
        hook = super().get_hook(context)
        if context["ti"].try_number == 1:
            submit = hook.submit

            def submit_then_crash(**kwargs: Any) -> Any:
                generation = submit(**kwargs)
                raise RuntimeError(f"simulated worker crash after submitting {generation.id}")

            hook.submit = submit_then_crash
        return hook


def _dag(dag_id: str, **params: Any) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        catchup=False,
        params={"image": IMAGE, "template": "Times Square Billboard", **params},
        default_args={"retries": 0},
        tags=["magicvideo-tests"],
    )


# Submit without waiting, wait blocking (with an asset outlet), wait deferred.
with _dag("operator_magicvideo_modes") as modes_dag:
    MagicVideoSubmitOperator(task_id="submit_only", image="{{ params.image }}")
    MagicVideoSubmitOperator(
        task_id="submit_sync", image="{{ params.image }}", template="{{ params.template }}",
        wait_for_completion=True, deferrable=False, poll_interval=POLL, timeout=60, outlets=[RENDERS_ASSET],
    )
    MagicVideoSubmitOperator(
        task_id="submit_deferred", image="{{ params.image }}", template="{{ params.template }}",
        wait_for_completion=True, deferrable=True, poll_interval=POLL, timeout=60,
    )

# Every sensor mode, one after the other, so that each waits on a fresh (~1 s) render.
with _dag("operator_magicvideo_sensors") as sensors_dag:
    submit_for_poke = MagicVideoSubmitOperator(task_id="submit_for_poke", image="{{ params.image }}")
    sensor_poke = MagicVideoSensor(task_id="sensor_poke", generation_id=submit_for_poke.output, mode="poke",
                                   poke_interval=POLL, timeout=60)
    submit_for_reschedule = MagicVideoSubmitOperator(task_id="submit_for_reschedule", image="{{ params.image }}")
    sensor_reschedule = MagicVideoSensor(task_id="sensor_reschedule", generation_id=submit_for_reschedule.output,
                                         mode="reschedule", poke_interval=POLL, timeout=60)
    submit_for_deferred = MagicVideoSubmitOperator(task_id="submit_for_deferred", image="{{ params.image }}")
    sensor_deferred = MagicVideoSensor(task_id="sensor_deferred", generation_id=submit_for_deferred.output,
                                       deferrable=True, poke_interval=POLL, timeout=60)
    # handed the submit task's dict (render already done): returns at the first poke, model/template kept
    submit_waited = MagicVideoSubmitOperator(
        task_id="submit_waited", image="{{ params.image }}", template="{{ params.template }}",
        wait_for_completion=True, poll_interval=POLL, timeout=60,
    )
    sensor_on_dict = MagicVideoSensor(task_id="sensor_on_dict", generation_id=submit_waited.output,
                                      deferrable=True, poke_interval=POLL, timeout=60)
    (sensor_poke >> submit_for_reschedule)
    (sensor_reschedule >> submit_for_deferred)
    (sensor_deferred >> submit_waited)

# Ten images, one render each, waited on in the triggerer.
with _dag("operator_magicvideo_mapped") as mapped_dag:
    MagicVideoSubmitOperator.partial(
        task_id="render", wait_for_completion=True, deferrable=True, poll_interval=POLL, timeout=60,
    ).expand(image=IMAGES)

# The first try dies after submitting; the retry must reconnect to the same render.
with _dag("operator_magicvideo_crash") as crash_dag:
    CrashOnceSubmitOperator.partial(
        task_id="crash_sync", wait_for_completion=True, deferrable=False, poll_interval=POLL, timeout=60,
        retries=1, retry_delay=0,
    ).expand(image=IMAGES[:2])
    CrashOnceSubmitOperator(
        task_id="crash_deferred", image="{{ params.image }}", wait_for_completion=True, deferrable=True,
        poll_interval=POLL, timeout=60, retries=1, retry_delay=0,
    )

# Renders that end in status "error" (emulator fault render_error_rate=1.0): fail, never retried.
with _dag("operator_magicvideo_render_error") as render_error_dag:
    for deferrable in (False, True):
        MagicVideoSubmitOperator(
            task_id=f"render_error_{'deferred' if deferrable else 'sync'}", image="{{ params.image }}",
            wait_for_completion=True, deferrable=deferrable, poll_interval=POLL, timeout=60,
            retries=2, retry_delay=0,
        )

    # Sensors on the failed render (already in "error" at their first poke) with soft_fail: skipped.
    for deferrable in (False, True):
        MagicVideoSensor(
            task_id=f"soft_fail_sensor_{'deferred' if deferrable else 'poke'}",
            generation_id="{{ ti.xcom_pull(task_ids='render_error_sync', key='generation_id') }}",
            deferrable=deferrable, soft_fail=True, poke_interval=POLL, timeout=60, trigger_rule="all_done",
        )
    render_error_dag.get_task("render_error_sync") >> [
        render_error_dag.get_task("soft_fail_sensor_poke"), render_error_dag.get_task("soft_fail_sensor_deferred")
    ]

# The test pauses the emulator's clock, so the renders never finish; the wait allows 0.5 s.
with _dag("operator_magicvideo_timeout") as timeout_dag:
    for deferrable in (False, True):
        MagicVideoSubmitOperator(
            task_id=f"timeout_{'deferred' if deferrable else 'sync'}", image="{{ params.image }}",
            wait_for_completion=True, deferrable=deferrable, poll_interval=POLL, timeout=0.5,
        )

# Problems no retry can fix: rejected key, unknown template, credit budget. All with retries=2.
with _dag("operator_magicvideo_fail_fast", bad_template="Not A Real Template") as fail_fast_dag:
    MagicVideoSubmitOperator(task_id="unauthorized", conn_id=STRICT_CONN_ID, image="{{ params.image }}",
                             retries=2, retry_delay=0)
    MagicVideoSubmitOperator(task_id="bad_template", image="{{ params.image }}",
                             template="{{ params.bad_template }}", retries=2, retry_delay=0)
    MagicVideoSubmitOperator(task_id="over_budget", image="{{ params.image }}", credit_budget=1_000,
                             retries=2, retry_delay=0)
    # Room for two renders: the third mapped submit sees the first two's credits and refuses.
    MagicVideoSubmitOperator.partial(task_id="budgeted", credit_budget=2_500_000, retries=2,
                                     retry_delay=0).expand(image=IMAGES[:3])

# One blocking and one deferred wait, for the secret-hygiene checks.
with _dag("operator_magicvideo_secrets") as secrets_dag:
    for deferrable in (False, True):
        MagicVideoSubmitOperator(
            task_id=f"wait_{'deferred' if deferrable else 'sync'}", image="{{ params.image }}",
            wait_for_completion=True, deferrable=deferrable, poll_interval=POLL, timeout=60,
        )

# A campaign, one task per row from image to delivered file: rows from a task, mapped with expand_kwargs.
CAMPAIGN_TEMPLATES = ("Times Square Billboard", "Art Gallery", "Phone Social")
CAMPAIGN_ASSET = Asset("magicvideo://campaign/videos")


@task
def campaign_rows(out_dir: str) -> list[dict[str, Any]]:
    # Values mapped from an XCom are not rendered again: the templated part is this task's argument.
    return [{"image": IMAGES[i], "template": template, "destination": f"{out_dir}/sku-{i}.mp4"}
            for i, template in enumerate(CAMPAIGN_TEMPLATES)]


with _dag("operator_magicvideo_render_mapped", out_dir="") as render_mapped_dag:
    MagicVideoRenderOperator.partial(
        task_id="render", poll_interval=POLL, timeout=60, retries=1, retry_delay=0, outlets=[CAMPAIGN_ASSET],
    ).expand_kwargs(campaign_rows("{{ params.out_dir }}/{{ ds }}"))
