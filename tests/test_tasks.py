"""tasks.py: task identity, argument checks, the state store, failing a task, reading trigger events."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    AuthenticationError,
    GenerationTimeoutError,
    InvalidInputError,
    ServerError,
)
from airflow_provider_magicvideo.tasks import (
    TaskState,
    check_count,
    check_interval,
    check_timeout,
    client_request_id_for,
    fail_task,
    result_of,
)


def ti(**overrides):
    values = {"dag_id": "dag_1", "task_id": "submit", "run_id": "manual__2025-01-01T00:00:00+00:00",
              "map_index": 3, **overrides}
    return SimpleNamespace(**values)


# --------------------------------------------------------------------------- client request id
def test_client_request_id_is_stable_across_tries_and_distinct_per_map_index():
    first = client_request_id_for({"ti": ti(try_number=1)})
    assert first == client_request_id_for({"ti": ti(try_number=2)})
    assert first != client_request_id_for({"ti": ti(map_index=4)})
    assert first.startswith("airflow:dag_1:submit:")
    assert len(first) <= 128


# --------------------------------------------------------------------------- argument checks
@pytest.mark.parametrize("value, expected", [(1, 1.0), ("2.5", 2.5), (3600, 3600.0)])
def test_check_interval_accepts(value, expected):
    assert check_interval(value, "poll_interval") == expected


@pytest.mark.parametrize("value", [0, -1, 0.999, 3601, "nan", "inf", "soon", None, True])
def test_check_interval_refuses_with_the_name(value):
    with pytest.raises(InvalidInputError, match="poll_interval"):
        check_interval(value, "poll_interval")


@pytest.mark.parametrize("value", [0, -5, "inf", 8 * 86_400])
def test_check_timeout_refuses(value):
    with pytest.raises(InvalidInputError, match="timeout"):
        check_timeout(value)


def test_check_count_allows_zero_but_not_fractions():
    assert check_count(0, "n") == 0
    assert check_count("4", "n") == 4
    with pytest.raises(InvalidInputError, match="n"):
        check_count(1.5, "n")


# --------------------------------------------------------------------------- fail_task
@pytest.mark.parametrize("error", [
    AuthenticationError("401", status_code=401),
    AmbiguousSubmitError("reset", generation_id="gen-1"),
    InvalidInputError("bad input"),
])
def test_fail_task_turns_final_errors_into_airflow_fail_exception(error):
    with pytest.raises(AirflowFailException) as caught, fail_task():
        raise error
    assert str(caught.value) == str(error)
    assert caught.value.__cause__ is error


@pytest.mark.parametrize("error", [ServerError("503", status_code=503), GenerationTimeoutError("g", "2025")])
def test_fail_task_leaves_retryable_errors_to_airflow(error):
    with pytest.raises(type(error)), fail_task():
        raise error


def test_fail_task_ignores_foreign_exceptions():
    with pytest.raises(KeyError), fail_task():
        raise KeyError("x")


# --------------------------------------------------------------------------- TaskState
class Store(dict):
    def set(self, key, value):
        self[key] = value


def test_task_state_round_trip_and_copies():
    store = Store()
    state = TaskState({"task_state_store": store}, "k")
    assert state.available
    assert state.load() is None
    record = {"generation_id": "gen-1"}
    state.save(record)
    record["generation_id"] = "changed"
    assert state.load() == {"generation_id": "gen-1"}


def test_task_state_without_a_store_keeps_nothing():
    state = TaskState({}, "k")
    assert not state.available
    state.save({"generation_id": "gen-1"})
    assert state.load() is None


def test_task_state_ignores_a_non_mapping_value():
    assert TaskState({"task_state_store": Store(k="gen-1")}, "k").load() is None


# --------------------------------------------------------------------------- result_of
RESULT = {"generation_id": "gen-1", "status": "completed", "video_url": "https://cdn/x.mp4",
          "url_expires_at": "2025-01-01T00:10:00+00:00", "credits_used": None, "model": None, "template": None}


def test_result_of_success_is_completed_with_what_the_task_knew():
    event = {"status": "success", "generation_id": "gen-1", "result": RESULT}
    known = {"model": "magic/image-to-video", "template": "T", "credits_used": 5, "generation_id": "ignored",
             "submitted_at": 1.0}
    result = result_of(event, known)
    assert result == {**RESULT, "model": "magic/image-to-video", "template": "T", "credits_used": 5}
    assert result_of(event) == RESULT


def test_result_of_keeps_the_events_values_when_the_task_knew_none():
    event = {"status": "success", "generation_id": "gen-1", "result": {**RESULT, "credits_used": 9}}
    assert result_of(event, {"credits_used": None})["credits_used"] == 9


@pytest.mark.parametrize("task_retry, raised", [(True, AirflowException), (False, AirflowFailException)])
def test_result_of_error_event(task_retry, raised):
    event = {"status": "error", "generation_id": "gen-1", "error": "X", "message": "it broke", "task_retry": task_retry}
    with pytest.raises(raised, match="it broke") as caught:
        result_of(event)
    assert (type(caught.value) is AirflowFailException) is (not task_retry)


def test_result_of_error_event_without_message_names_the_generation():
    with pytest.raises(AirflowFailException, match="gen-1"):
        result_of({"status": "error", "generation_id": "gen-1"})


@pytest.mark.parametrize("event", [None, {}, {"status": "timeout"}, {"status": "success"},
                                   {"status": "success", "result": {**RESULT, "video_url": None}}])
def test_result_of_refuses_unusable_events(event):
    with pytest.raises(AirflowException) as caught:
        result_of(event)
    assert type(caught.value) is AirflowException
