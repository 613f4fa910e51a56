"""MagicVideoSensor in poke, reschedule and deferrable mode, through ``dag.test()`` against the real emulator.

The DAG is ``operator_magicvideo_sensors`` in tests/dag_files/operator_test_dags.py: each sensor waits on
a render submitted just before it and held by the emulator until a poll has seen it pending, so every mode
really waits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from airflow_provider_magicvideo.generation import RESULT_KEYS
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoLink
from airflow_provider_magicvideo.sensors.magicvideo import MagicVideoSensor
from tests.airflow_compat import dag_test
from tests.dag_files.operator_support import Spy, conn_env, load_dags, tis, xcom

pytestmark = pytest.mark.integration

DAGS = load_dags()


@pytest.fixture(scope="module")
def sensors_run(airflow_db, magicvideo_emulator_session) -> Iterator[dict[str, Any]]:
    emulator = magicvideo_emulator_session
    emulator.reset()
    # Every render is held (the emulator clock is paused) until a status poll has seen it pending, then
    # released with complete_pending: each sensor's first poke finds its render pending on any machine, and
    # nothing races the render clock. The DAG chains submit -> sensor -> next submit, so one render at a time.
    emulator.pause_clock()
    get_generation = MagicVideoHook.get_generation

    def get_generation_then_release(hook, generation_id):
        generation = get_generation(hook, generation_id)
        if not generation.is_terminal:
            emulator.complete_pending()
        return generation

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(*conn_env(emulator.base_url))
        mp.setattr(MagicVideoHook, "get_generation", get_generation_then_release)
        resumed = Spy(mp, MagicVideoSensor, "execute_complete")
        pokes = Spy(mp, MagicVideoSensor, "poke")
        dr = dag_test(DAGS.sensors_dag)
        yield {"dr": dr, "stats": emulator.stats(), "resumed": resumed, "pokes": pokes}
    emulator.reset()


def test_all_sensors_succeed_without_submitting(sensors_run):
    dr = sensors_run["dr"]
    states = {key: ti.state for key, ti in tis(dr).items()}
    assert dr.state == "success", states
    assert set(states.values()) == {"success"}
    assert sensors_run["stats"]["total_posts"] == 4  # the four submit tasks; sensors never POST


@pytest.mark.parametrize("task_id, upstream", [
    ("sensor_poke", "submit_for_poke"),
    ("sensor_reschedule", "submit_for_reschedule"),
    ("sensor_deferred", "submit_for_deferred"),
])
def test_each_mode_returns_the_result_dict(sensors_run, task_id, upstream):
    dr = sensors_run["dr"]
    result = xcom(dr, task_id)
    assert tuple(result) == RESULT_KEYS
    assert result["generation_id"] == xcom(dr, upstream)
    assert result["status"] == "completed"
    assert result["video_url"].startswith("http")
    assert result["url_expires_at"]
    assert xcom(dr, task_id, "video_url") == result["video_url"]
    # The link is the provider's redirect of this task instance (never the expiring URL); it finds the generation here.
    assert xcom(dr, task_id, MagicVideoLink().xcom_key).endswith(f"/tasks/{task_id}/video?map_index=-1&conn_id=magicvideo_default")
    assert xcom(dr, task_id, "generation_id") == result["generation_id"]


def test_each_mode_really_waited(sensors_run):
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    pokes = sensors_run["pokes"].task_ids()
    assert pokes.count("sensor_poke") >= 2  # the render was held pending at the first poke
    instances = tis(sensors_run["dr"])
    with create_session() as session:
        reschedules = session.scalars(select(TaskReschedule).where(
            TaskReschedule.ti_id == instances[("sensor_reschedule", -1)].id)).all()
    assert len(reschedules) >= 1
    assert instances[("sensor_reschedule", -1)].try_number == 1
    # Only the deferrable sensor whose render was still pending went to the trigger.
    assert sensors_run["resumed"].task_ids() == ["sensor_deferred"]


def test_sensor_handed_the_submit_dict_keeps_model_and_template(sensors_run):
    dr = sensors_run["dr"]
    submitted, result = xcom(dr, "submit_waited"), xcom(dr, "sensor_on_dict")
    assert tuple(result) == RESULT_KEYS
    assert result["generation_id"] == submitted["generation_id"]
    assert result["model"] == "magic/image-to-video"
    assert result["template"] == "Times Square Billboard"
    assert "sensor_on_dict" not in sensors_run["resumed"].task_ids()  # done at the first poke
