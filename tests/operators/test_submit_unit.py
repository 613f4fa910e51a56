"""MagicVideoSubmitOperator, every branch, with a fake hook: no HTTP, no Airflow DB, no sleeps.

The fake stands where ``get_hook`` returns the real hook; it records what the operator asked of it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_magicvideo.account import CREDITS_PER_GENERATION, Balance
from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    AuthenticationError,
    GenerationTimeoutError,
    InvalidInputError,
    ServerError,
)
from airflow_provider_magicvideo.generation import RESULT_KEYS, Generation, GenerationStatus
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger
from tests.task_support import Store

API_KEY = "sk-test-Zr4nd0mK3yThatMustNeverLeak9"
VIDEO_URL = ("https://cdn.magic.test/renders/gen-1.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Date=20250102T030405Z&X-Amz-Expires=600&X-Amz-Signature=deadbeef")
IMAGE = "https://example.com/cat.png"
DAG_RUN_START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def gen(status: str, generation_id: str = "gen-1", **fields: Any) -> Generation:
    if status == "completed":
        fields.setdefault("video_url", VIDEO_URL)
    return Generation(id=generation_id, status=GenerationStatus(status), raw_status=status, **fields)


class FakeHook:
    """What the operator needs of MagicVideoHook: submit (with on_created), get_generation, wait."""

    def __init__(self, *, statuses: dict[str, Generation] | None = None, wait_result: Any = None,
                 submit_error: Exception | None = None, credits_quoted: int | None = CREDITS_PER_GENERATION,
                 found: Generation | None = None, balance: Balance | None = None) -> None:
        self.found = found
        self.balance = balance
        self.lookups: list[dict[str, Any]] = []
        self.before_submit = lambda: None
        self.statuses = statuses or {}
        self.wait_result = wait_result
        self.submit_error = submit_error
        self.credits_quoted = credits_quoted
        self.submits: list[dict[str, Any]] = []
        self.gets: list[str] = []
        self.waits: list[tuple[str, dict[str, Any]]] = []

    def find_generation(self, *, model: str, since: float) -> Generation | None:
        self.lookups.append({"model": model, "since": since})
        return self.found

    def get_balance(self) -> Balance:
        assert self.balance is not None
        return self.balance

    def submit(self, *, on_created=None, **kwargs: Any) -> Generation:
        self.before_submit()
        self.submits.append(kwargs)
        if self.submit_error is not None:
            raise self.submit_error
        new_id = f"gen-new-{len(self.submits)}"
        if on_created is not None:
            on_created(new_id, self.credits_quoted)
        return gen("queued", new_id, credits_used=self.credits_quoted)

    def get_generation(self, generation_id: str) -> Generation:
        self.gets.append(generation_id)
        return self.statuses[generation_id]

    def wait_for_generation(self, generation_id: str, **kwargs: Any) -> Generation:
        self.waits.append((generation_id, kwargs))
        if isinstance(self.wait_result, Exception):
            raise self.wait_result
        return self.wait_result or gen("completed", generation_id)


class FakeTI:
    dag_id, task_id, run_id, map_index = "dag_1", "submit", "manual__2025", -1

    def __init__(self, recorded_credits: list | None = None, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcoms: dict[str, Any] = {}
        self.recorded_credits = recorded_credits or []

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        assert key == "credits_used"
        return self.recorded_credits


def make_context(store: Store | None = None, **ti_kwargs: Any) -> dict[str, Any]:
    return {"ti": FakeTI(**ti_kwargs), "task_state_store": store, "dag": SimpleNamespace(task_ids=["submit"]),
            "dag_run": SimpleNamespace(start_date=DAG_RUN_START), "outlet_events": {}}


def make_op(monkeypatch, hook: FakeHook, **kwargs: Any) -> MagicVideoSubmitOperator:
    kwargs.setdefault("image", IMAGE)
    op = MagicVideoSubmitOperator(task_id="submit", **kwargs)
    monkeypatch.setattr(op, "get_hook", lambda context: hook)
    return op


STATE_KEY = MagicVideoSubmitOperator.state_key


# --------------------------------------------------------------------------- submit, no state yet
def test_submit_records_the_id_and_quote_and_returns_the_id(monkeypatch):
    hook, store = FakeHook(), Store()
    context = make_context(store)
    result = make_op(monkeypatch, hook).execute(context)
    assert result == "gen-new-1"
    assert len(hook.submits) == 1
    assert hook.submits[0]["template"]  # the model's default, resolved before the POST
    assert store[STATE_KEY]["generation_id"] == "gen-new-1"
    assert store[STATE_KEY]["credits_used"] == CREDITS_PER_GENERATION
    assert context["ti"].xcoms == {"generation_id": "gen-new-1", "credits_used": CREDITS_PER_GENERATION,
                                   # written when the try starts (Airflow writes links only when it ends)
                                   "_link_MagicVideoLink": "/magicvideo/dags/dag_1/runs/manual__2025/tasks/submit"
                                                           "/video?map_index=-1&conn_id=magicvideo_default"}
    assert hook.waits == []


def test_without_a_state_store_the_first_try_submits_without_a_lookup(monkeypatch):
    hook = FakeHook()
    assert make_op(monkeypatch, hook).execute(make_context(store=None)) == "gen-new-1"
    assert len(hook.submits) == 1
    assert hook.lookups == []


def test_without_a_state_store_a_retry_reconnects_through_the_usage_log(monkeypatch):
    # Airflow < 3.3: nothing survives between tries. Before issue #18's fix the retry submitted again.
    hook = FakeHook(found=gen("generating", "gen-logged"))
    context = make_context(store=None, try_number=2)
    assert make_op(monkeypatch, hook).execute(context) == "gen-logged"
    assert hook.submits == []
    assert hook.lookups == [{"model": "magic/image-to-video", "since": DAG_RUN_START.timestamp()}]
    assert context["ti"].xcoms["generation_id"] == "gen-logged"
    # The lost answer's quote: a pending generation reports none, the documented price stands in (issue #18).
    assert context["ti"].xcoms["credits_used"] == CREDITS_PER_GENERATION


def test_without_a_state_store_a_retry_submits_when_the_log_proves_nothing_exists(monkeypatch):
    hook = FakeHook(found=None)
    assert make_op(monkeypatch, hook).execute(make_context(store=None, try_number=3)) == "gen-new-1"
    assert len(hook.lookups) == 1 and len(hook.submits) == 1


def test_a_logged_generation_that_ended_in_error_is_not_reused(monkeypatch):
    hook = FakeHook(found=gen("error", "gen-logged"))
    assert make_op(monkeypatch, hook).execute(make_context(store=None, try_number=2)) == "gen-new-1"
    assert len(hook.submits) == 1


def test_a_crash_between_the_post_and_its_record_is_looked_up_from_the_send_time(monkeypatch):
    # The state store holds the time the submit was about to be sent, but no id: the next try looks it up.
    store = Store({STATE_KEY: {"model": "magic/image-to-video", "template": "Thailand Street",
                               "sending_at": 1_790_000_000.5}})
    hook = FakeHook(found=gen("queued", "gen-logged"))
    assert make_op(monkeypatch, hook).execute(make_context(store, try_number=2)) == "gen-logged"
    assert hook.lookups == [{"model": "magic/image-to-video", "since": 1_790_000_000.5}]
    assert hook.submits == []
    assert store[STATE_KEY]["generation_id"] == "gen-logged"


def test_the_send_time_is_recorded_before_the_post_and_cleared_by_an_answered_refusal(monkeypatch):
    store = Store()
    seen = []
    hook = FakeHook(submit_error=AuthenticationError("bad key", status_code=401))
    hook.before_submit = lambda: seen.append(dict(store[STATE_KEY]))
    with pytest.raises(AirflowFailException):
        make_op(monkeypatch, hook).execute(make_context(store))
    assert "sending_at" in seen[0]
    assert "sending_at" not in store[STATE_KEY]  # a retry has nothing to look for


def test_an_ambiguous_submit_keeps_the_send_time_for_a_later_lookup(monkeypatch):
    store = Store()
    hook = FakeHook(submit_error=AmbiguousSubmitError("ReadTimeout", client_request_id="x"))
    with pytest.raises(AirflowFailException):
        make_op(monkeypatch, hook).execute(make_context(store))
    assert "sending_at" in store[STATE_KEY]


@pytest.mark.parametrize(("credits", "allowed"), [(3 * CREDITS_PER_GENERATION, True),
                                                 (3 * CREDITS_PER_GENERATION - 1, False)])
def test_min_balance_renders_refuses_before_the_post(monkeypatch, credits, allowed):
    hook = FakeHook(balance=Balance(credits=credits))
    op = make_op(monkeypatch, hook, min_balance_renders=3)
    if allowed:
        assert op.execute(make_context(Store())) == "gen-new-1"
    else:
        with pytest.raises(AirflowFailException, match=r"min_balance_renders: .*~2 generations.*Nothing was sub"):
            op.execute(make_context(Store()))
        assert hook.submits == []


@pytest.mark.parametrize("value", [0, -1, 2.5, "many", float("nan")])
def test_min_balance_renders_is_checked_at_parse_time(value):
    with pytest.raises(InvalidInputError, match="min_balance_renders"):
        MagicVideoSubmitOperator(task_id="submit", image=IMAGE, min_balance_renders=value)


def test_blocking_wait_returns_the_result_dict_and_publishes_the_url(monkeypatch):
    hook, store = FakeHook(), Store()
    context = make_context(store)
    op = make_op(monkeypatch, hook, wait_for_completion=True, deferrable=False, poll_interval=3, timeout=90,
                 max_consecutive_poll_failures=2)
    result = op.execute(context)
    assert tuple(result) == RESULT_KEYS
    assert result["generation_id"] == "gen-new-1"
    assert result["credits_used"] == CREDITS_PER_GENERATION
    assert result["model"] == "magic/image-to-video"
    assert context["ti"].xcoms["video_url"] == VIDEO_URL
    (generation_id, kwargs), = hook.waits
    assert generation_id == "gen-new-1"
    assert kwargs["poll_interval"] == 3 and kwargs["timeout"] == 90
    assert kwargs["max_consecutive_poll_failures"] == 2
    assert kwargs["submitted_at"] == store[STATE_KEY]["submitted_at"]


# --------------------------------------------------------------------------- resume from the state store
@pytest.mark.parametrize("status", ["queued", "generating", "completed"])
def test_a_stored_live_or_completed_generation_is_reused_never_resubmitted(monkeypatch, status):
    store = Store({STATE_KEY: {"generation_id": "gen-old", "model": "magic/image-to-video",
                               "template": "Times Square Billboard", "credits_used": 7}})
    hook = FakeHook(statuses={"gen-old": gen(status, "gen-old")})
    context = make_context(store)
    result = make_op(monkeypatch, hook, wait_for_completion=True, deferrable=False).execute(context)
    assert hook.submits == []
    assert hook.gets == ["gen-old"]
    assert result["generation_id"] == "gen-old"
    assert result["credits_used"] == 7  # kept from the first try's submit
    assert context["ti"].xcoms["generation_id"] == "gen-old"
    # A completed one needs no wait; a pending one is waited on.
    assert [g for g, _ in hook.waits] == ([] if status == "completed" else ["gen-old"])


def test_a_stored_generation_that_ended_in_error_is_submitted_anew(monkeypatch, capsys):
    store = Store({STATE_KEY: {"generation_id": "gen-old", "model": "magic/image-to-video", "template": "x"}})
    failed = gen("error", "gen-old", error_name="RenderError", error_message="face not found")
    hook = FakeHook(statuses={"gen-old": failed})
    result = make_op(monkeypatch, hook).execute(make_context(store))
    assert result == "gen-new-1"
    assert len(hook.submits) == 1
    assert store[STATE_KEY]["generation_id"] == "gen-new-1"
    assert "not billed" in capsys.readouterr().out


def test_a_stored_record_without_an_id_is_ignored(monkeypatch):
    hook = FakeHook()
    assert make_op(monkeypatch, hook).execute(make_context(Store({STATE_KEY: {"model": "x"}}))) == "gen-new-1"
    assert hook.gets == []


# --------------------------------------------------------------------------- budget
def test_credit_budget_as_a_string_is_accepted():
    assert MagicVideoSubmitOperator(task_id="t", credit_budget="2000000").credit_budget == 2_000_000


@pytest.mark.parametrize("budget", ["lots", "nan", -5, 1.5, True, "1e400"])
def test_credit_budget_garbage_is_refused_at_construction(budget):
    with pytest.raises(InvalidInputError, match="credit_budget"):
        MagicVideoSubmitOperator(task_id="t", credit_budget=budget)


def test_budget_refusal_fails_without_retry_and_submits_nothing(monkeypatch):
    hook = FakeHook()
    context = make_context(Store(), recorded_credits=[CREDITS_PER_GENERATION, None, "junk"])
    op = make_op(monkeypatch, hook, credit_budget="2000000")
    with pytest.raises(AirflowFailException, match="Nothing was submitted"):
        op.execute(context)
    assert hook.submits == []
    assert set(context["ti"].xcoms) == {"_link_MagicVideoLink"}  # the link only: nothing was submitted


def test_budget_with_room_submits(monkeypatch):
    hook = FakeHook()
    op = make_op(monkeypatch, hook, credit_budget=2 * CREDITS_PER_GENERATION)
    assert op.execute(make_context(Store(), recorded_credits=[CREDITS_PER_GENERATION])) == "gen-new-1"


# --------------------------------------------------------------------------- intervals: refused before any POST
@pytest.mark.parametrize("interval", [0, -1, 0.5, "nan", "soon"])
def test_bad_poll_interval_is_refused_at_construction(monkeypatch, interval):
    with pytest.raises(InvalidInputError, match="poll_interval"):
        MagicVideoSubmitOperator(task_id="t", image=IMAGE, poll_interval=interval, wait_for_completion=True)


@pytest.mark.parametrize("timeout", [0, -1, "inf"])
def test_bad_timeout_is_refused_at_construction(timeout):
    with pytest.raises(InvalidInputError, match="timeout"):
        MagicVideoSubmitOperator(task_id="t", timeout=timeout)


# --------------------------------------------------------------------------- errors and fail-fast
def test_a_permanent_submit_error_fails_the_task_without_retry(monkeypatch):
    hook = FakeHook(submit_error=AuthenticationError("401 from the API", status_code=401))
    with pytest.raises(AirflowFailException, match="Fix: put a valid AI/ML API key"):
        make_op(monkeypatch, hook).execute(make_context(Store()))


def test_an_ambiguous_submit_fails_without_retry(monkeypatch):
    hook = FakeHook(submit_error=AmbiguousSubmitError("connection reset", client_request_id="cid-1"))
    with pytest.raises(AirflowFailException, match="NOT resubmitted"):
        make_op(monkeypatch, hook).execute(make_context(Store()))


def test_a_transient_error_is_left_to_airflow_retries(monkeypatch):
    hook = FakeHook(submit_error=ServerError("503", status_code=503))
    with pytest.raises(ServerError):
        make_op(monkeypatch, hook).execute(make_context(Store()))


def test_a_wait_timeout_may_retry_and_the_retry_reconnects(monkeypatch):
    store = Store()
    hook = FakeHook(wait_result=GenerationTimeoutError("gen-new-1", "2025-01-01T00:00:00+00:00", "generating"))
    op = make_op(monkeypatch, hook, wait_for_completion=True, deferrable=False)
    with pytest.raises(GenerationTimeoutError):
        op.execute(make_context(store))
    retry_hook = FakeHook(statuses={"gen-new-1": gen("completed", "gen-new-1")})
    monkeypatch.setattr(op, "get_hook", lambda context: retry_hook)
    assert op.execute(make_context(store))["generation_id"] == "gen-new-1"
    assert retry_hook.submits == []


# --------------------------------------------------------------------------- deferral
def test_deferral_hands_the_trigger_only_plain_key_free_values(monkeypatch):
    hook, store = FakeHook(), Store()
    context = make_context(store)
    op = make_op(monkeypatch, hook, wait_for_completion=True, deferrable=True, poll_interval=5, timeout=120,
                 max_consecutive_poll_failures=3)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, MagicVideoTrigger)
    assert deferred.value.method_name == "execute_complete"
    _classpath, kwargs = trigger.serialize()
    assert kwargs["generation_id"] == "gen-new-1"
    assert kwargs["poll_interval"] == 5
    assert kwargs["max_consecutive_poll_failures"] == 3
    assert kwargs["submitted_at"] == store[STATE_KEY]["submitted_at"]
    assert kwargs["client_request_id"].startswith("airflow:dag_1:submit:manual__2025")
    text = json.dumps([kwargs, deferred.value.kwargs])
    assert API_KEY not in text
    assert "http" not in text.lower()  # no URL: the trigger reads the connection itself
    assert "video_url" not in context["ti"].xcoms  # the extra link reads no XCom
    assert context["ti"].xcoms["generation_id"] == "gen-new-1"  # what the link's redirect looks up
    assert hook.waits == []


def test_a_completed_resumed_generation_does_not_defer(monkeypatch):
    store = Store({STATE_KEY: {"generation_id": "gen-old", "model": "magic/image-to-video", "template": "x"}})
    hook = FakeHook(statuses={"gen-old": gen("completed", "gen-old")})
    op = make_op(monkeypatch, hook, wait_for_completion=True, deferrable=True)
    assert op.execute(make_context(store))["video_url"] == VIDEO_URL


def success_event(generation_id: str = "gen-new-1") -> dict[str, Any]:
    return {"status": "success", "generation_id": generation_id, "result": gen("completed", generation_id).result()}


def test_execute_complete_success_keeps_what_the_submit_knew(monkeypatch):
    op = make_op(monkeypatch, FakeHook())
    context = make_context(Store())
    submission = {"generation_id": "gen-new-1", "model": "magic/image-to-video", "template": "Times Square Billboard",
                  "credits_used": CREDITS_PER_GENERATION}
    result = op.execute_complete(context, event=success_event(), submission=submission)
    assert tuple(result) == RESULT_KEYS
    assert result["template"] == "Times Square Billboard"
    assert result["credits_used"] == CREDITS_PER_GENERATION
    assert context["ti"].xcoms["video_url"] == VIDEO_URL


@pytest.mark.parametrize("task_retry, raised", [(True, AirflowException), (False, AirflowFailException)])
def test_execute_complete_error_event(monkeypatch, task_retry, raised):
    op = make_op(monkeypatch, FakeHook())
    event = {"status": "error", "generation_id": "gen-1", "error": "GenerationFailedError",
             "message": "Generation gen-1 failed: RenderError: face not found", "task_retry": task_retry}
    with pytest.raises(raised, match="face not found") as caught:
        op.execute_complete(make_context(Store()), event=event, submission={})
    assert (type(caught.value) is AirflowFailException) is (not task_retry)


@pytest.mark.parametrize("event", [None, {}, {"status": "timeout"}, {"status": "success", "result": {}}])
def test_execute_complete_refuses_an_unusable_event(monkeypatch, event):
    with pytest.raises(AirflowException):
        make_op(monkeypatch, FakeHook()).execute_complete(make_context(Store()), event=event, submission={})


# --------------------------------------------------------------------------- credits of a failed generation
def test_a_generation_that_ended_in_error_records_zero_credits_blocking(monkeypatch):
    # Failed generations are not billed (issue #17): credit_budget must not count its quote.
    from airflow_provider_magicvideo.exceptions import GenerationFailedError

    hook = FakeHook(wait_result=GenerationFailedError("gen-new-1", "RenderError", "face not found"))
    context = make_context(Store())
    with pytest.raises(AirflowFailException, match="face not found"):
        make_op(monkeypatch, hook, wait_for_completion=True, deferrable=False).execute(context)
    assert context["ti"].xcoms["credits_used"] == 0


@pytest.mark.parametrize(("error", "credits"), [("GenerationFailedError", 0),
                                                ("GenerationTimeoutError", "untouched")])
def test_a_generation_that_ended_in_error_records_zero_credits_deferred(monkeypatch, error, credits):
    context = make_context(Store())
    context["ti"].xcoms["credits_used"] = "untouched"
    event = {"status": "error", "generation_id": "gen-1", "error": error, "message": "m", "task_retry": False}
    with pytest.raises(AirflowFailException):
        make_op(monkeypatch, FakeHook()).execute_complete(context, event=event, submission={})
    assert context["ti"].xcoms["credits_used"] == credits


def test_execute_complete_without_kwargs_or_state_store_keeps_what_the_submit_knew(monkeypatch):
    # dag.test() resumes without the defer kwargs, and below Airflow 3.3 there is no task_state_store: the
    # quote comes from this try's credits_used XCom (kept while deferred), model and template from the task.
    op = make_op(monkeypatch, FakeHook(), template="times square billboard")
    context = make_context(None, recorded_credits=CREDITS_PER_GENERATION)
    result = op.execute_complete(context, event=success_event())
    assert tuple(result) == RESULT_KEYS
    assert result["credits_used"] == CREDITS_PER_GENERATION
    assert (result["model"], result["template"]) == ("magic/image-to-video", "Times Square Billboard")
