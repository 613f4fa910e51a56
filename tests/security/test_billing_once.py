"""Never billed twice (issue 16, item 1): failures right after a successful submit POST.

Each case drives the public MagicVideoSubmitOperator with its real hook over a real socket (the emulator, or
the scripted hostile server), simulates Airflow's retry by running ``execute`` again with the same durable
``task_state_store``, and counts submit POSTs on the server side.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_magicvideo.emulator.testing import data_uri, png_bytes
from airflow_provider_magicvideo.exceptions import AmbiguousSubmitError, DeliveryError
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from airflow_provider_magicvideo.operators.render import MagicVideoRenderOperator
from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger
from tests.security.hostile_server import json_reply
from tests.task_support import EmulatorTime, Store, first_event

IMAGE = data_uri(png_bytes((10, 200, 30), (64, 48)))
STATE_KEY = MagicVideoSubmitOperator.state_key
GENERATIONS = "/v2/video/generations"


class FlakyTI:
    """A task instance whose first ``fail_pushes`` pushes of ``fail_key`` fail (the execution API hiccups)."""

    dag_id, task_id, run_id, map_index = "billing_dag", "submit", "manual__2026", -1

    def __init__(self, try_number: int, fail_pushes: int = 0, fail_key: str = "generation_id") -> None:
        self.try_number = try_number
        self.fail_pushes = fail_pushes
        self.fail_key = fail_key
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        if self.fail_pushes and key == self.fail_key:
            self.fail_pushes -= 1
            raise ConnectionError("XCom push: 503 from the execution API")
        self.xcoms[key] = value


def context(store: Store, ti: FlakyTI) -> dict[str, Any]:
    return {"ti": ti, "task_state_store": store, "dag": SimpleNamespace(task_ids=["submit"]), "outlet_events": {}}


def submit_operator() -> MagicVideoSubmitOperator:
    return MagicVideoSubmitOperator(task_id="submit", image=IMAGE, retries=1)


@pytest.mark.integration
def test_a_failed_xcom_push_after_the_post_is_retried_by_reconnecting(magicvideo_emulator, magicvideo_conn):
    # On f66ac56 the generation id reached the state store only after submit_job() returned (the mixin recorded
    # it), and submit_job() pushed the XCom first: the failed push left no id behind, so the retry POSTed a
    # second, billed render (total_posts == 2).
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    store, op = Store(), submit_operator()
    with pytest.raises(ConnectionError):
        op.execute(context(store, FlakyTI(try_number=1, fail_pushes=1)))
    recorded = store[STATE_KEY]["generation_id"]

    retry = FlakyTI(try_number=2)
    assert op.execute(context(store, retry)) == recorded  # reconnected
    assert retry.xcoms["generation_id"] == recorded
    stats = magicvideo_emulator.stats()
    assert stats["total_posts"] == 1
    assert list(stats["posts_by_client_request_id"].values()) == [1]


@pytest.mark.parametrize("credits", [float("nan"), float("inf"), -3, "lots"])
def test_an_unusable_credits_figure_in_the_answer_is_ignored(hostile_server, magicvideo_conn, credits):
    # On f66ac56 parsing meta.usage.credits_used raised (ValueError/OverflowError from int(NaN)/int(inf))
    # after the POST, outside the submit guard: the task failed with a plain, retryable error and its retry
    # POSTed again.
    hostile_server.route("POST", GENERATIONS, json_reply(
        {"id": "gen-odd-credits", "status": "queued", "meta": {"usage": {"credits_used": credits}}},
        headers={"x-aimlapi-credits-used": "Infinity"}))
    magicvideo_conn(f"{hostile_server.url}/v2", max_retries=0)
    store, ti = Store(), FlakyTI(try_number=1)
    assert submit_operator().execute(context(store, ti)) == "gen-odd-credits"
    assert store[STATE_KEY]["generation_id"] == "gen-odd-credits"
    assert store[STATE_KEY]["credits_used"] is None
    assert "credits_used" not in ti.xcoms
    assert hostile_server.count("POST", GENERATIONS) == 1


@pytest.mark.integration
def test_a_failed_state_store_write_is_ambiguous_and_fails_without_retry(magicvideo_emulator, magicvideo_conn):
    # On f66ac56 a failing task_state_store.set() (called after the hook's submit returned) raised the store's
    # own ConnectionError: retryable, so Airflow's retry submitted again without knowing the first render.
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    store = Store(fail_on=frozenset({2}))  # the first set() records the send time, the second the id
    with pytest.raises(AirflowFailException) as failed:  # AirflowFailException: retries=1 is not used
        submit_operator().execute(context(store, FlakyTI(try_number=1)))
    cause = failed.value.__cause__
    assert isinstance(cause, AmbiguousSubmitError)
    generation_id = cause.generation_id
    assert generation_id
    assert f"Generation {generation_id} was created" in str(failed.value)
    assert f"MagicVideoSensor(generation_id={generation_id!r})" in str(failed.value)
    assert "generation_id" not in store[STATE_KEY]
    assert magicvideo_emulator.stats()["total_posts"] == 1


@pytest.mark.integration
def test_a_failed_state_store_write_before_the_post_sends_nothing(magicvideo_emulator, magicvideo_conn):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    with pytest.raises(ConnectionError):  # retryable: nothing was sent
        submit_operator().execute(context(Store(fail_on=frozenset({1})), FlakyTI(try_number=1)))
    assert magicvideo_emulator.stats()["total_posts"] == 0


# ------------------------------------------------------------- a lost submit answer, reconciled (issue #17)
def reconciling_operator(monkeypatch, emulator, **kwargs: Any) -> tuple[MagicVideoSubmitOperator, EmulatorTime]:
    op = MagicVideoSubmitOperator(task_id="submit", image=IMAGE, retries=1, **kwargs)
    fake = EmulatorTime(emulator)
    real_get_hook = op.get_hook

    def get_hook(ctx):
        hook = real_get_hook(ctx)
        hook.clock, hook.sleep = fake, fake.sleep
        return hook

    monkeypatch.setattr(op, "get_hook", get_hook)
    return op, fake


@pytest.mark.integration
@pytest.mark.parametrize(("profile", "looked_for"), [("drop_after_post", 0), ("drop_after_post,late_logs", 30)])
def test_a_dropped_submit_answer_reconnects_to_the_one_generation(magicvideo_emulator, magicvideo_conn,
                                                                  monkeypatch, profile, looked_for):
    # Before issue #17 the dropped answer failed the task ("may have been created"): 0 of 1 delivered.
    magicvideo_emulator.set_faults(profile=profile)
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    op, fake = reconciling_operator(monkeypatch, magicvideo_emulator)
    store, ti = Store(), FlakyTI(try_number=1)
    generation_id = op.execute(context(store, ti))
    stats = magicvideo_emulator.stats()
    assert stats["total_posts"] == 1
    assert store[STATE_KEY]["generation_id"] == generation_id == ti.xcoms["generation_id"]
    assert fake.slept >= looked_for  # late rows: it kept looking instead of concluding "nothing there"


@pytest.mark.integration
def test_a_dropped_submit_with_the_log_unavailable_fails_without_resubmitting(magicvideo_emulator,
                                                                              magicvideo_conn, monkeypatch):
    magicvideo_emulator.set_faults(profile="drop_after_post,logs_unavailable")
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    op, _ = reconciling_operator(monkeypatch, magicvideo_emulator)
    with pytest.raises(AirflowFailException, match="usage log could not be checked"):
        op.execute(context(Store(), FlakyTI(try_number=1)))
    assert magicvideo_emulator.stats()["total_posts"] == 1


@pytest.mark.integration
def test_without_a_state_store_a_retry_finds_the_first_tries_generation(magicvideo_emulator, magicvideo_conn,
                                                                        monkeypatch):
    # Airflow < 3.3 (no task_state_store): before issue #18's fix every retry POSTed a new, billed render.
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    op, _ = reconciling_operator(monkeypatch, magicvideo_emulator)
    first = op.execute({**context(Store(), FlakyTI(try_number=1)), "task_state_store": None})
    again = op.execute({**context(Store(), FlakyTI(try_number=2)), "task_state_store": None})
    assert again == first
    assert magicvideo_emulator.stats()["total_posts"] == 1


# ---------------------------------------------- the render operator: a failed delivery is not a failed render
def render_operator(destination: Path, **kwargs: Any) -> MagicVideoRenderOperator:
    # max_attempts=2: the download loop's own retry (a fresh URL) sleeps 0 s before the second attempt.
    return MagicVideoRenderOperator(task_id="submit", image=IMAGE, destination=str(destination), poll_interval=1,
                                    timeout=60, max_attempts=2, retries=1, **kwargs)


@pytest.mark.integration
def test_a_retry_after_a_failed_download_delivers_without_rendering_again(magicvideo_emulator, magicvideo_conn,
                                                                         tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    magicvideo_emulator.set_faults(url_expiry=-1)  # every video URL has expired when it is used
    store, op = Store(), render_operator(tmp_path / "clip.mp4", deferrable=False)
    with pytest.raises(DeliveryError, match="after 2 attempt") as failed:
        op.execute(context(store, FlakyTI(try_number=1)))
    assert not isinstance(failed.value, AirflowFailException)  # Airflow retries it
    recorded = store[STATE_KEY]["generation_id"]
    assert not (tmp_path / "clip.mp4").exists()

    magicvideo_emulator.set_faults(url_expiry=600)
    result = op.execute(context(store, FlakyTI(try_number=2)))
    assert result["generation_id"] == recorded
    assert result["sha256"] == hashlib.sha256((tmp_path / "clip.mp4").read_bytes()).hexdigest()
    assert result["credits_used"] == 1_050_000  # kept from the first try's submit
    stats = magicvideo_emulator.stats()
    assert stats["total_posts"] == 1
    assert list(stats["posts_by_client_request_id"].values()) == [1]


@pytest.mark.integration
def test_a_cleared_task_after_an_unwritable_destination_delivers_without_rendering_again(
        magicvideo_emulator, magicvideo_conn, tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    (tmp_path / "out").write_text("a file where the destination's folder should be")
    store, op = Store(), render_operator(tmp_path / "out" / "clip.mp4", deferrable=False)
    with pytest.raises(AirflowFailException, match=r"out/clip\.mp4"):  # no retry can fix it
        op.execute(context(store, FlakyTI(try_number=1)))
    (tmp_path / "out").unlink()  # fixed; the task instance is cleared
    result = op.execute(context(store, FlakyTI(try_number=2)))
    assert result["generation_id"] == store[STATE_KEY]["generation_id"]
    assert (tmp_path / "out" / "clip.mp4").read_bytes()[4:8] == b"ftyp"
    assert magicvideo_emulator.stats()["total_posts"] == 1


@pytest.mark.integration
def test_a_failed_delivery_after_a_deferral_and_a_triggerer_restart_renders_once(magicvideo_emulator,
                                                                                 magicvideo_conn, tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    store, op = Store(), render_operator(tmp_path / "clip.mp4")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(store, FlakyTI(try_number=1)))
    _, trigger_kwargs = deferred.value.trigger.serialize()
    # The triggerer restarts: a new trigger from the stored kwargs polls the same generation.
    event = asyncio.run(first_event(MagicVideoTrigger(**trigger_kwargs)))
    magicvideo_emulator.set_faults(url_expiry=-1)
    with pytest.raises(DeliveryError):
        op.execute_complete(context(store, FlakyTI(try_number=1)), event=event, **(deferred.value.kwargs or {}))

    magicvideo_emulator.set_faults(url_expiry=600)
    result = op.execute(context(store, FlakyTI(try_number=2)))  # completed: delivered at once, no deferral
    assert result["generation_id"] == event["generation_id"] == store[STATE_KEY]["generation_id"]
    assert (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"
    assert magicvideo_emulator.stats()["total_posts"] == 1


@pytest.mark.integration
def test_without_a_state_store_a_retry_after_a_failed_delivery_finds_the_generation(magicvideo_emulator,
                                                                                   magicvideo_conn, monkeypatch,
                                                                                   tmp_path):
    # Airflow < 3.3: nothing is kept between tries; the retry finds the generation in the usage log.
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    magicvideo_emulator.set_faults(url_expiry=-1)
    op = render_operator(tmp_path / "clip.mp4", deferrable=False)
    with pytest.raises(DeliveryError):
        op.execute({**context(Store(), FlakyTI(try_number=1)), "task_state_store": None})
    magicvideo_emulator.set_faults(url_expiry=600)
    real_get_hook, fake = op.get_hook, EmulatorTime(magicvideo_emulator)

    def get_hook(ctx):
        hook = real_get_hook(ctx)
        hook.clock, hook.sleep = fake, fake.sleep
        return hook

    monkeypatch.setattr(op, "get_hook", get_hook)
    result = op.execute({**context(Store(), FlakyTI(try_number=2)), "task_state_store": None})
    assert (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"
    assert result["status"] == "completed"
    assert magicvideo_emulator.stats()["total_posts"] == 1
