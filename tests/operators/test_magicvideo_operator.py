"""MagicVideoSubmitOperator through ``dag.test()`` against the real emulator.

The DAGs live in ``tests/dag_files/operator_test_dags.py`` (dag.test() re-parses the bundle files).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from airflow_provider_magicvideo.emulator.pytest_plugin import SESSION_CONFIG
from airflow_provider_magicvideo.emulator.server import run_emulator
from airflow_provider_magicvideo.generation import RESULT_KEYS
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoLink, MagicVideoSubmitOperator
from tests.airflow_compat import dag_test, without_airflow_30_mask_secret_echo
from tests.dag_files.operator_support import Spy, all_xcoms, conn_env, failure, load_dags, tis, xcom

pytestmark = pytest.mark.integration

DAGS = load_dags()


def run_dag(dag, **conf):
    return dag_test(dag, run_conf=conf or None)


# --------------------------------------------------------------------------- one run, every mode
@pytest.fixture(scope="module")
def modes_run(airflow_db, magicvideo_emulator_session) -> Iterator[dict[str, Any]]:
    emulator = magicvideo_emulator_session
    emulator.reset()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(*conn_env(emulator.base_url))
        op_resumed = Spy(mp, MagicVideoSubmitOperator, "execute_complete")
        dr = run_dag(DAGS.modes_dag)
        yield {"dr": dr, "stats": emulator.stats(), "op_resumed": op_resumed}
    emulator.reset()


def test_modes_run_succeeds(modes_run):
    dr = modes_run["dr"]
    states = {key: ti.state for key, ti in tis(dr).items()}
    assert dr.state == "success", states
    assert set(states.values()) == {"success"}
    # three submits, three renders: waiting never submits again
    assert modes_run["stats"]["total_posts"] == 3
    assert set(modes_run["stats"]["posts_by_client_request_id"].values()) == {1}


def test_submit_without_waiting_returns_and_pushes_the_id(modes_run):
    dr = modes_run["dr"]
    generation_id = xcom(dr, "submit_only")
    assert isinstance(generation_id, str) and generation_id
    assert xcom(dr, "submit_only", "generation_id") == generation_id
    assert xcom(dr, "submit_only", "credits_used") == 1_050_000
    assert xcom(dr, "submit_only", "video_url") is None


def test_sync_and_deferred_waits_return_the_same_dict(modes_run):
    dr = modes_run["dr"]
    sync, deferred = xcom(dr, "submit_sync"), xcom(dr, "submit_deferred")
    for result, task_id in ((sync, "submit_sync"), (deferred, "submit_deferred")):
        assert tuple(result) == RESULT_KEYS, task_id
        assert result["status"] == "completed"
        assert result["video_url"].startswith("http")
        assert result["url_expires_at"]
        assert result["credits_used"] == 1_050_000, task_id
        assert result["model"] == "magic/image-to-video"
        assert result["template"] == "Times Square Billboard"
        assert xcom(dr, task_id, "video_url") == result["video_url"]
        assert xcom(dr, task_id, "generation_id") == result["generation_id"]
    assert sync["generation_id"] != deferred["generation_id"]
    assert {type(v) for v in sync.values()} == {type(v) for v in deferred.values()}
    # the deferred one really went through the trigger
    assert modes_run["op_resumed"].task_ids() == ["submit_deferred"]


def test_asset_event_extra(modes_run):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    dr = modes_run["dr"]
    result = xcom(dr, "submit_sync")
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == "magicvideo://renders/x", AssetEvent.source_run_id == dr.run_id)
        ).all()
        extras = [dict(e.extra) for e in events]
    assert len(extras) == 1
    extra = extras[0]
    assert extra["generation_id"] == result["generation_id"]
    assert extra["video_url"] == result["video_url"]
    assert extra["template"] == "Times Square Billboard"
    assert extra["credits_used"] == 1_050_000


def test_extra_link_is_the_redirect_of_the_task_instance_in_every_mode(modes_run):
    dr = modes_run["dr"]
    link = MagicVideoLink()
    # The worker calls get_link(operator, ti_key=...) when the task ends and stores what it returns for the
    # UI under link.xcom_key: the provider's redirect (a fresh URL at click time), never the expiring URL.
    for task_id in ("submit_sync", "submit_deferred", "submit_only"):
        value = xcom(dr, task_id, link.xcom_key)
        assert value.startswith(f"/magicvideo/dags/{dr.dag_id}/runs/"), task_id
        assert value.endswith(f"/tasks/{task_id}/video?map_index=-1&conn_id=magicvideo_default"), task_id
        assert "X-Amz" not in value


# --------------------------------------------------------------------------- mapped
def test_mapped_deferred_submit_renders_each_image_once(airflow_db, magicvideo_conn):
    # Its own emulator with fast renders: dag.test() runs the ten mapped waits one after the other.
    with run_emulator(render_seconds=0.2, render="fast") as fast_emulator:
        magicvideo_conn(fast_emulator.base_url)
        dr = run_dag(DAGS.mapped_dag)
        posts = fast_emulator.stats()["posts_by_client_request_id"]
    instances = tis(dr)
    assert dr.state == "success"
    assert sorted(map_index for _, map_index in instances) == list(range(10))
    assert {ti.state for ti in instances.values()} == {"success"}
    results = [xcom(dr, "render", map_index=i) for i in range(10)]
    assert all(r["status"] == "completed" and r["video_url"] for r in results)
    assert len({r["generation_id"] for r in results}) == 10
    assert len(posts) == 10
    assert set(posts.values()) == {1}
    assert sorted(int(client_id.rsplit(":", 1)[1]) for client_id in posts) == list(range(10))


# --------------------------------------------------------------------------- crash + retry
def test_retry_after_crash_reconnects_instead_of_resubmitting(airflow_db, magicvideo_emulator, magicvideo_conn):
    magicvideo_conn(magicvideo_emulator.base_url)
    dr = run_dag(DAGS.crash_dag)
    instances = tis(dr)
    assert dr.state == "success", {k: ti.state for k, ti in instances.items()}
    for key in (("crash_sync", 0), ("crash_sync", 1), ("crash_deferred", -1)):
        assert instances[key].state == "success"
        assert instances[key].try_number == 2, key
        assert "simulated worker crash" in failure(dr, key[0], key[1], 1)
        result = xcom(dr, key[0], map_index=key[1])
        assert result["status"] == "completed"
        assert result["credits_used"] == 1_050_000  # kept from the first try's submit
    stats = magicvideo_emulator.stats()
    assert stats["total_posts"] == 3
    assert sorted(stats["posts_by_client_request_id"].values()) == [1, 1, 1]


# --------------------------------------------------------------------------- failures
def test_render_error_fails_without_retry(airflow_db, magicvideo_emulator, magicvideo_conn):
    magicvideo_conn(magicvideo_emulator.base_url)
    magicvideo_emulator.set_faults(render_error_rate=1.0)
    dr = run_dag(DAGS.render_error_dag)
    instances = tis(dr)
    assert dr.state == "failed"
    for task_id in ("render_error_sync", "render_error_deferred"):
        ti = instances[(task_id, -1)]
        assert ti.state == "failed"
        assert ti.try_number == 1  # AirflowFailException: retries=2 not used
        message = failure(dr, task_id)
        generation_id = xcom(dr, task_id, "generation_id")
        assert f"Generation {generation_id} failed" in message
        assert "RenderError" in message
        assert "The render failed on the worker" in message
    assert magicvideo_emulator.stats()["total_posts"] == 2
    # a sensor on that render with soft_fail is skipped in either mode, as sensors do for a failing poke
    assert instances[("soft_fail_sensor_poke", -1)].state == "skipped"
    assert instances[("soft_fail_sensor_deferred", -1)].state == "skipped"


def test_timeout_names_the_generation(airflow_db, magicvideo_emulator, magicvideo_conn):
    magicvideo_conn(magicvideo_emulator.base_url)
    # Held: on the paused emulator clock no render can complete, however slow the machine (the fixture's reset
    # restarts the clock).
    magicvideo_emulator.pause_clock()
    magicvideo_emulator.pause_clock()  # the renders cannot finish before the 0.5 s wait ends, however busy the box
    try:
        dr = run_dag(DAGS.timeout_dag)
    finally:
        magicvideo_emulator.resume_clock()
    instances = tis(dr)
    assert dr.state == "failed"
    for task_id in ("timeout_sync", "timeout_deferred"):
        assert instances[(task_id, -1)].state == "failed"
        generation_id = xcom(dr, task_id, "generation_id")
        message = failure(dr, task_id)
        assert f"Generation {generation_id} did not complete" in message
        # Both waits name their absolute deadline (true across triggerer failovers).
        assert "by its deadline 20" in message
        assert f"MagicVideoSensor(generation_id={generation_id!r})" in message
    assert magicvideo_emulator.stats()["total_posts"] == 2


def test_permanent_problems_fail_fast(airflow_db, magicvideo_emulator, monkeypatch):
    monkeypatch.setenv(*conn_env(magicvideo_emulator.base_url))
    with run_emulator(**SESSION_CONFIG, keys=["only-this"]) as strict:
        monkeypatch.setenv(*conn_env(strict.base_url, DAGS.STRICT_CONN_ID))  # key is not "only-this"
        dr = run_dag(DAGS.fail_fast_dag)
        strict_stats = strict.stats()
    instances = tis(dr)
    for task_id in ("unauthorized", "bad_template", "over_budget"):
        assert instances[(task_id, -1)].state == "failed", task_id
        assert instances[(task_id, -1)].try_number == 1, task_id
    assert "401" in failure(dr, "unauthorized")
    assert "Fix: put a valid AI/ML API key" in failure(dr, "unauthorized")
    assert strict_stats["jobs_created"] == 0
    assert "Not A Real Template" in failure(dr, "bad_template")
    assert "credit_budget" in failure(dr, "over_budget")
    assert "Nothing was submitted" in failure(dr, "over_budget")
    # the mapped submits ran one after the other (in no set order): two fit the budget, the last refused
    budgeted = {i: instances[("budgeted", i)] for i in range(3)}
    assert sorted(ti.state for ti in budgeted.values()) == ["failed", "success", "success"]
    (refused,) = [i for i, ti in budgeted.items() if ti.state == "failed"]
    assert budgeted[refused].try_number == 1
    assert "2,100,000 credits" in failure(dr, "budgeted", refused)
    posts = magicvideo_emulator.stats()["posts_by_client_request_id"]
    assert len(posts) == 2, posts
    assert sorted(int(client_id.rsplit(":", 1)[1]) for client_id in posts) == sorted(set(range(3)) - {refused})
    assert set(posts.values()) == {1}


# --------------------------------------------------------------------------- secrets
def test_api_key_never_leaks(airflow_db, magicvideo_emulator, magicvideo_conn, api_key, caplog, capfd, monkeypatch):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    magicvideo_conn(magicvideo_emulator.base_url)
    triggers = []
    original_defer = MagicVideoSubmitOperator.defer

    def record_defer(op, *, trigger, **kwargs):
        triggers.append(trigger.serialize())
        return original_defer(op, trigger=trigger, **kwargs)

    monkeypatch.setattr(MagicVideoSubmitOperator, "defer", record_defer)
    with caplog.at_level("DEBUG"):
        dr = run_dag(DAGS.secrets_dag)
    assert dr.state == "success"
    assert len(triggers) == 1

    out, err = capfd.readouterr()
    logged = caplog.text
    assert "wait_deferred" in out + err + logged  # the logs were captured at all
    # Deferring evaluates the extra link before a video exists; that must not log an error.
    assert "XCom not found" not in out + err + logged
    # Airflow 3.0's dag.test() echoes the connection password once, itself (see airflow_compat); nothing else may.
    out, err, logged = (without_airflow_30_mask_secret_echo(text, api_key) for text in (out, err, logged))
    assert api_key not in out
    assert api_key not in err
    assert api_key not in logged
    assert api_key not in json.dumps(all_xcoms(dr), default=str)
    assert api_key not in json.dumps(triggers)
    with create_session() as session:
        rendered = session.scalars(select(RenderedTaskInstanceFields).where(
            RenderedTaskInstanceFields.dag_id == dr.dag_id, RenderedTaskInstanceFields.run_id == dr.run_id)).all()
        assert rendered
        assert api_key not in json.dumps([r.rendered_fields for r in rendered], default=str)
        trigger_rows = session.scalars(select(Trigger)).all()
        assert api_key not in json.dumps([str(t.kwargs) for t in trigger_rows], default=str)
        serialized = session.scalars(select(SerializedDagModel).where(
            SerializedDagModel.dag_id == dr.dag_id)).all()
        assert serialized
        assert api_key not in json.dumps([s.data for s in serialized], default=str)
    log_dir = Path(airflow_db) / "logs"
    for path in log_dir.rglob("*") if log_dir.exists() else ():
        if path.is_file():
            assert api_key not in path.read_text(errors="replace"), path
