"""MagicVideoSensor, every branch, with a fake hook: no HTTP, no Airflow DB, no sleeps."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_magicvideo.exceptions import AuthenticationError, InvalidInputError, ServerError
from airflow_provider_magicvideo.generation import RESULT_KEYS, Generation, GenerationStatus
from airflow_provider_magicvideo.sensors.magicvideo import MagicVideoSensor
from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger

API_KEY = "sk-test-Zr4nd0mK3yThatMustNeverLeak9"
VIDEO_URL = ("https://cdn.magic.test/renders/gen-1.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Date=20250102T030405Z&X-Amz-Expires=600&X-Amz-Signature=deadbeef")


def gen(status: str, generation_id: str = "gen-1", **fields: Any) -> Generation:
    if status == "completed":
        fields.setdefault("video_url", VIDEO_URL)
    return Generation(id=generation_id, status=GenerationStatus(status), raw_status=status, **fields)


class FakeHook:
    """Answers each status request with the next outcome (a Generation, or an error to raise)."""

    def __init__(self, *outcomes: Generation | Exception) -> None:
        self.outcomes = list(outcomes)
        self.gets: list[str] = []

    def get_generation(self, generation_id: str) -> Generation:
        self.gets.append(generation_id)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class FakeTI:
    dag_id, task_id, run_id, map_index, try_number = "dag_1", "wait", "manual__2025", -1, 1

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def make_context() -> dict[str, Any]:
    return {"ti": FakeTI(), "outlet_events": {}}


def make_sensor(hook: FakeHook, **kwargs: Any) -> MagicVideoSensor:
    kwargs.setdefault("generation_id", "gen-1")
    kwargs.setdefault("poke_interval", 1)
    sensor = MagicVideoSensor(task_id="wait", **kwargs)
    sensor.hook = hook  # the cached_property's slot: what the real sensor would build from the connection
    return sensor


def server_error() -> ServerError:
    return ServerError("AI/ML API answered 503", status_code=503)


# --------------------------------------------------------------------------- construction
@pytest.mark.parametrize("interval", [0, -1, 0.5, "nan"])
def test_bad_poke_interval_is_refused_at_construction(interval):
    with pytest.raises(InvalidInputError, match="poke_interval"):
        MagicVideoSensor(task_id="wait", generation_id="gen-1", poke_interval=interval)


@pytest.mark.parametrize("value", ["None", "", None, "{}"])
def test_an_unusable_generation_id_fails_without_retry(value):
    sensor = make_sensor(FakeHook(), generation_id=value)
    with pytest.raises(AirflowFailException, match="not a generation id"):
        sensor.poke(make_context())


# --------------------------------------------------------------------------- poke
def test_poke_pending_then_done_with_the_result_dict():
    sensor = make_sensor(FakeHook(gen("queued"), gen("generating"), gen("completed")))
    context = make_context()
    assert sensor.poke(context).is_done is False
    assert sensor.poke(context).is_done is False
    done = sensor.poke(context)
    assert done.is_done is True
    assert tuple(done.xcom_value) == RESULT_KEYS
    assert done.xcom_value["video_url"] == VIDEO_URL


def test_poke_accepts_the_submit_tasks_dict_and_keeps_model_and_template():
    upstream = {"generation_id": "gen-1", "model": "magic/image-to-video", "template": "Paris Eiffel Tower",
                "credits_used": 1_050_000}
    hook = FakeHook(gen("completed"))
    done = make_sensor(hook, generation_id=upstream).poke(make_context())
    assert hook.gets == ["gen-1"]
    assert done.xcom_value["template"] == "Paris Eiffel Tower"
    assert done.xcom_value["credits_used"] == 1_050_000


def test_poke_also_accepts_that_dict_rendered_to_text():
    hook = FakeHook(gen("completed"))
    make_sensor(hook, generation_id=json.dumps({"generation_id": "gen-1"})).poke(make_context())
    assert hook.gets == ["gen-1"]


def test_transient_poll_failures_are_tolerated_up_to_the_limit():
    hook = FakeHook(server_error(), server_error(), gen("generating"), server_error(), server_error(),
                    gen("completed"))
    sensor = make_sensor(hook, max_consecutive_poll_failures=2)
    context = make_context()
    done = [sensor.poke(context).is_done for _ in range(6)]
    assert done == [False, False, False, False, False, True]  # the count resets after a good poll


def test_one_transient_failure_too_many_is_left_to_airflow_retries():
    sensor = make_sensor(FakeHook(server_error(), server_error()), max_consecutive_poll_failures=1)
    context = make_context()
    assert sensor.poke(context).is_done is False
    with pytest.raises(ServerError):
        sensor.poke(context)


def test_a_permanent_poll_failure_fails_at_once():
    sensor = make_sensor(FakeHook(AuthenticationError("401", status_code=401)), max_consecutive_poll_failures=5)
    with pytest.raises(AirflowFailException, match="Fix: put a valid AI/ML API key"):
        sensor.poke(make_context())


def test_a_failed_render_fails_without_retry():
    failed = gen("error", error_name="RenderError", error_message="face not found")
    with pytest.raises(AirflowFailException, match="Generation gen-1 failed: RenderError: face not found"):
        make_sensor(FakeHook(failed)).poke(make_context())


# --------------------------------------------------------------------------- deferrable
def test_deferrable_done_at_the_first_poke_never_defers():
    context = make_context()
    result = make_sensor(FakeHook(gen("completed")), deferrable=True).execute(context)
    assert result["video_url"] == VIDEO_URL
    assert context["ti"].xcoms["video_url"] == VIDEO_URL


def test_deferrable_pending_defers_with_a_plain_key_free_trigger():
    hook = FakeHook(gen("generating"))
    context = make_context()
    sensor = make_sensor(hook, deferrable=True, poke_interval=4, timeout=300, max_consecutive_poll_failures=3)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    assert deferred.value.method_name == "execute_complete"
    trigger = deferred.value.trigger
    assert isinstance(trigger, MagicVideoTrigger)
    _classpath, kwargs = trigger.serialize()
    assert kwargs["generation_id"] == "gen-1"
    assert kwargs["poll_interval"] == 4
    assert kwargs["max_consecutive_poll_failures"] == 3
    assert kwargs["client_request_id"].startswith("airflow:dag_1:wait:manual__2025")
    assert API_KEY not in json.dumps(kwargs)
    assert "http" not in json.dumps(kwargs).lower()
    # Nothing pushed for the link to read (it reads no XCom); the redirect finds the generation by its id.
    assert "video_url" not in context["ti"].xcoms
    assert context["ti"].xcoms["generation_id"] == "gen-1"


def test_deferred_resume_with_success_publishes_the_result():
    sensor = make_sensor(FakeHook(), deferrable=True,
                         generation_id={"generation_id": "gen-1", "template": "Paris Eiffel Tower"})
    context = make_context()
    event = {"status": "success", "generation_id": "gen-1", "result": gen("completed").result()}
    result = sensor.execute_complete(context, event)
    assert tuple(result) == RESULT_KEYS
    assert result["template"] == "Paris Eiffel Tower"
    assert context["ti"].xcoms["video_url"] == VIDEO_URL


@pytest.mark.parametrize("task_retry, raised", [(True, AirflowException), (False, AirflowFailException)])
def test_deferred_resume_with_an_error(task_retry, raised):
    event = {"status": "error", "generation_id": "gen-1", "error": "ServerError", "message": "503 again",
             "task_retry": task_retry}
    with pytest.raises(raised, match="503 again") as caught:
        make_sensor(FakeHook(), deferrable=True).execute_complete(make_context(), event)
    assert (type(caught.value) is AirflowFailException) is (not task_retry)


def test_deferred_timeout_is_a_sensor_timeout():
    event = {"status": "error", "generation_id": "gen-1", "error": "GenerationTimeoutError",
             "message": "Generation gen-1 did not complete by its deadline", "task_retry": True}
    with pytest.raises(AirflowSensorTimeout, match="did not complete"):
        make_sensor(FakeHook(), deferrable=True).execute_complete(make_context(), event)


# --------------------------------------------------------------------------- soft_fail
def test_soft_fail_skips_a_failed_render_in_deferrable_mode():
    failed = gen("error", error_name="RenderError", error_message="face not found")
    sensor = make_sensor(FakeHook(failed), deferrable=True, soft_fail=True)
    with pytest.raises(AirflowSkipException, match="face not found"):
        sensor.execute(make_context())


def test_without_soft_fail_a_failed_render_fails_in_deferrable_mode():
    failed = gen("error", error_name="RenderError", error_message="face not found")
    with pytest.raises(AirflowFailException):
        make_sensor(FakeHook(failed), deferrable=True).execute(make_context())
