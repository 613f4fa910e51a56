"""MagicVideoSensor(start_from_trigger=True): the scheduler hands the wait to the triggerer (Airflow >= 3.3).

``dag.test()`` never starts a task from the triggerer (it runs ``execute`` on its in-process worker), so the
path is driven here piece by piece as Airflow 3.3 runs it: the serialized DAG's ``start_trigger_args`` (what
the scheduler's ``TaskInstance.defer_task`` reads), the trigger built from those kwargs and rendered with the
task's template fields (the triggerer), its event handed to ``execute_complete`` (the worker).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pendulum
import pytest

from airflow_provider_magicvideo.emulator.testing import data_uri, png_bytes
from airflow_provider_magicvideo.exceptions import InvalidInputError
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.sensors import magicvideo as sensor_module
from airflow_provider_magicvideo.sensors.magicvideo import MagicVideoSensor
from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger
from airflow_provider_magicvideo.version_check import airflow_release
from tests.task_support import first_event

TEMPLATE = "{{ ti.xcom_pull(task_ids='submit', key='generation_id') }}"

needs_airflow_3_3 = pytest.mark.skipif((airflow_release() or (0, 0, 0)) < (3, 3, 0),
                                       reason="start_from_trigger needs Airflow >= 3.3")


class FakeTI:
    dag_id, task_id, run_id, map_index, try_number = "dag_1", "wait", "manual__2025", -1, 1

    def __init__(self, upstream_generation_id: str = "") -> None:
        self.upstream_generation_id = upstream_generation_id
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value", **_: Any) -> Any:
        assert (task_ids, key) == ("submit", "generation_id")
        return self.upstream_generation_id


def sensor(**kwargs: Any) -> MagicVideoSensor:
    kwargs = {"generation_id": TEMPLATE, "deferrable": True, "start_from_trigger": True, "poke_interval": 1,
              "timeout": 120, **kwargs}
    return MagicVideoSensor(task_id="wait", **kwargs)


@needs_airflow_3_3
def test_the_trigger_arguments_are_plain_values_fixed_at_parse_time(api_key):
    task = sensor(poke_interval=5, max_consecutive_poll_failures=2)
    args = task.start_trigger_args
    assert task.start_from_trigger is True
    assert args.trigger_cls == "airflow_provider_magicvideo.triggers.magicvideo.MagicVideoTrigger"
    assert args.next_method == "execute_complete" and not args.next_kwargs
    assert args.timeout == timedelta(seconds=120)  # the scheduler turns it into the trigger's timeout
    assert args.trigger_kwargs == {"generation_id": TEMPLATE, "end_time": None, "conn_id": "magicvideo_default",
                                   "poll_interval": 5, "max_consecutive_poll_failures": 2,
                                   "deadline_by_airflow": True}
    # No clock reading: the serialized DAG is the same at every parse.
    assert sensor(poke_interval=5, max_consecutive_poll_failures=2).start_trigger_args == args
    assert api_key not in json.dumps(args.trigger_kwargs)
    trigger = MagicVideoTrigger(**args.trigger_kwargs)  # what the triggerer builds
    assert trigger.serialize()[1]["end_time"] is None and trigger.serialize()[1]["deadline_by_airflow"] is True
    # Per task, not on the class: other sensors start on a worker.
    assert MagicVideoSensor.start_trigger_args is None
    assert MagicVideoSensor(task_id="plain", generation_id="g", deferrable=True).start_from_trigger is False


@needs_airflow_3_3
def test_the_serialized_dag_keeps_the_start_trigger_args():
    from airflow.models.trigger import Trigger
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("start_from_trigger_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        sensor()
    task = DagSerialization.from_dict(json.loads(json.dumps(DagSerialization.to_dict(dag)))).get_task("wait")
    assert task.start_from_trigger is True
    args = task.start_trigger_args
    assert args.trigger_cls.endswith("MagicVideoTrigger") and args.next_method == "execute_complete"
    assert args.timeout == timedelta(seconds=120)
    # The scheduler's defer_task stores them, as read from the serialized DAG, in the Trigger row; the
    # triggerer builds the trigger from that row's kwargs.
    kwargs = Trigger._decrypt_kwargs(Trigger.encrypt_kwargs(args.trigger_kwargs))
    assert kwargs == {"generation_id": TEMPLATE, "end_time": None, "conn_id": "magicvideo_default",
                      "poll_interval": 1, "max_consecutive_poll_failures": 5, "deadline_by_airflow": True}
    assert MagicVideoTrigger(**kwargs).generation_id == TEMPLATE


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"deferrable": False}, "deferrable=True"),
    ({"generation_id": {"generation_id": "gen-1"}}, "a dict cannot be"),
])
def test_unusable_combinations_are_refused_at_parse_time(kwargs, match, monkeypatch):
    monkeypatch.setattr(sensor_module, "airflow_release", lambda: (3, 3, 2))
    with pytest.raises(InvalidInputError, match=match):
        sensor(**kwargs)


def test_an_xcomarg_generation_id_is_refused(monkeypatch):
    from airflow.sdk import DAG

    monkeypatch.setattr(sensor_module, "airflow_release", lambda: (3, 3, 2))  # the check after the version's

    from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator

    with DAG("xcomarg_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        submit = MagicVideoSubmitOperator(task_id="submit", image="https://example.com/cat.png")
        with pytest.raises(InvalidInputError, match="must be a string or a Jinja template"):
            sensor(generation_id=submit.output)


def test_older_airflow_is_refused_with_the_alternative(monkeypatch):
    monkeypatch.setattr(sensor_module, "airflow_release", lambda: (3, 2, 2))
    with pytest.raises(InvalidInputError, match=r"Airflow >= 3\.3.*deferrable=True alone"):
        sensor()


@needs_airflow_3_3
@pytest.mark.integration
def test_the_triggerer_renders_the_id_and_the_worker_hands_the_result_on(magicvideo_emulator, magicvideo_conn,
                                                                         no_shared_session_leak):
    from airflow.sdk import DAG

    magicvideo_conn(magicvideo_emulator.base_url)
    hook = MagicVideoHook()
    generation_id = hook.submit(image=data_uri(png_bytes((90, 30, 200), (64, 48)))).id
    hook.close()
    with DAG("start_from_trigger_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        task = sensor()

    # The triggerer: the trigger from the stored kwargs, the task's template fields that are trigger kwargs
    # rendered (Airflow 3.3's BaseTrigger.task_instance / render_template_fields), then the wait.
    args = task.start_trigger_args
    trigger = MagicVideoTrigger(**args.trigger_kwargs)
    ti = FakeTI(upstream_generation_id=generation_id)
    ti.task = task  # type: ignore[attr-defined]
    trigger.task_instance = ti  # type: ignore[assignment]
    assert trigger.template_fields == ("generation_id",)
    trigger.render_template_fields(context={"ti": ti})  # type: ignore[arg-type]
    assert trigger.generation_id == generation_id
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "success"

    # The worker: the task's fields rendered as for any try, then next_method with the event.
    context = {"ti": ti, "outlet_events": {}}
    task.render_template_fields(context)  # type: ignore[arg-type]
    result = getattr(task, args.next_method)(context, event=event)
    assert result["generation_id"] == generation_id and result["status"] == "completed"
    assert ti.xcoms["generation_id"] == generation_id  # execute never ran: the link's redirect needs it
    assert ti.xcoms["video_url"] == result["video_url"]
    assert magicvideo_emulator.stats()["total_posts"] == 1
