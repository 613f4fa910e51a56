"""The extra links on a real run of the quickstart DAG (submit → deferred wait → deliver), what `make demo` runs.

Airflow 3 evaluates ``get_link`` on the worker when a try leaves it (task_runner.finalize: success, failure,
deferral) and stores the value as the XCom ``_link_<class>``; the api-server only reads that XCom. So:
no link may read an XCom that does not exist yet (the old one read ``video_url`` and logged ``[error] XCom not
found`` on every successful run), every task's link must have a value once a try has left the worker (the
deferred one included), and the redirect it points at must find the generation the task instance recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.airflow_compat import dag_test, dagbag_class
from tests.conftest import REPO_ROOT
from tests.dag_files.operator_support import xcom

pytestmark = pytest.mark.integration

LINK_KEY = "_link_MagicVideoLink"
JWT_SECRET = "test-jwt-secret-for-the-extra-link-tests-" + "x" * 40


def _link_now(ti: Any) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalar(select(XComModel.value).where(
            XComModel.dag_id == ti.dag_id, XComModel.run_id == ti.run_id, XComModel.task_id == ti.task_id,
            XComModel.map_index == ti.map_index, XComModel.key == LINK_KEY))


@pytest.fixture(scope="module")
def quickstart(airflow_db, magicvideo_emulator_session, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """One quickstart run; every finalize() is recorded with the link value it left in the DB at that moment."""
    from airflow.sdk.execution_time import task_runner

    from tests.dag_files.operator_support import conn_env

    emulator = magicvideo_emulator_session
    emulator.reset()
    finalized: list[tuple[str, str, Any]] = []
    observed: list[bool] = []  # per finalize(): was the API client logging through the recorder below?
    original = task_runner.finalize

    def finalize(ti, state, context, log, error=None):
        observed.append(isinstance(sdk_client.log, SdkClientLog))
        result = original(ti, state, context, log, error)
        finalized.append((ti.task_id, str(state), _link_now(ti)))
        if "deferred" in str(state).lower():
            emulator.resume_clock()  # the render may finish now that the wait has deferred
        return result

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    class SdkClientLog:
        """Airflow's API client logs "XCom not found" through structlog: record what it logs, pass it on."""

        def __init__(self, wrapped: Any) -> None:
            self.wrapped = wrapped

        def __getattr__(self, level: str) -> Any:
            method = getattr(self.wrapped, level)

            def record(event: str, *args: Any, **kw: Any) -> Any:
                client_events.append((level, str(event), {k: str(v) for k, v in kw.items()}))
                return method(event, *args, **kw)

            return record

    from airflow.sdk.api import client as sdk_client

    client_events: list[tuple[str, str, dict[str, str]]] = []
    handler = Collect(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    out = tmp_path_factory.mktemp("quickstart-out")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(*conn_env(emulator.base_url))
            mp.setenv("MAGICVIDEO_POLL_SECONDS", "1")
            mp.setattr(task_runner, "finalize", finalize)
            mp.setattr(sdk_client, "log", SdkClientLog(sdk_client.log))
            dag = dagbag_class()(dag_folder=str(REPO_ROOT / "dags")).dags["magicvideo_quickstart"]
            # Held until the wait task defers (see finalize): on a busy machine a 1 s render could otherwise be
            # done before the sensor's first look, and the wait would never defer.
            emulator.pause_clock()
            dr = dag_test(dag, run_conf={"output_dir": str(out)})
            yield {"dr": dr, "finalized": finalized, "records": records, "out": out, "client_events": client_events,
                   "observed": observed}
    finally:
        logging.getLogger().removeHandler(handler)
        emulator.resume_clock()
        emulator.reset()


def test_a_successful_run_logs_no_xcom_not_found_error(quickstart):
    assert quickstart["dr"].state == "success"
    # Where the run logs client events at all (3.3 logs state-store misses at debug level; 3.0-3.2 nothing on a
    # clean run), they must reach the recorder; and every finalize (where link values are read) ran with it.
    assert quickstart["observed"] and all(quickstart["observed"]), "the API client's log was not observed"
    errors = [event for event in quickstart["client_events"] if event[0] in ("error", "exception", "critical")]
    assert not errors  # the old link read video_url before it existed: ("error", "XCom not found", {key: video_url})
    logged = "\n".join(f"{r.levelname} {r.name} {r.getMessage()}" for r in quickstart["records"])
    assert "XCom not found" not in logged
    assert not [r for r in quickstart["records"] if r.levelno >= logging.ERROR], logged


def test_every_task_links_to_the_redirect_of_its_own_task_instance(quickstart):
    dr = quickstart["dr"]
    run = dr.run_id.replace(":", "%3A").replace("+", "%2B")
    for task_id in ("submit", "wait", "deliver"):
        assert xcom(dr, task_id, LINK_KEY) == (
            f"/magicvideo/dags/magicvideo_quickstart/runs/{run}/tasks/{task_id}/video"
            "?map_index=-1&conn_id=magicvideo_default"), task_id
    assert xcom(dr, "deliver", "_link_MagicVideoDeliveredLink") == ""  # file:// has no page a browser may open


def test_the_deferred_wait_already_has_its_link(quickstart):
    deferred = [(task_id, link) for task_id, state, link in quickstart["finalized"] if "deferred" in state.lower()]
    assert [task_id for task_id, _ in deferred] == ["wait"]
    assert deferred[0][1] and "/tasks/wait/video" in str(deferred[0][1])


def test_each_task_instance_recorded_the_generation_the_redirect_looks_up(quickstart):
    from airflow_provider_magicvideo.plugins.video_redirect import recorded_generation_id

    dr = quickstart["dr"]
    generation_id = xcom(dr, "submit")
    for task_id in ("submit", "wait", "deliver"):
        assert recorded_generation_id(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id, map_index=-1) == \
            generation_id, task_id
    assert recorded_generation_id(dag_id=dr.dag_id, run_id=dr.run_id, task_id="where_is_it", map_index=-1) is None


def test_clicking_each_link_logged_in_redirects_to_the_render(quickstart, magicvideo_emulator_session, monkeypatch):
    import requests
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow_provider_magicvideo.plugins import MagicVideoPlugin
    from tests.dag_files.operator_support import conn_env

    monkeypatch.setenv(*conn_env(magicvideo_emulator_session.base_url))
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_ISSUER", "airflow")  # Airflow 3.0 signs nothing without one
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = create_auth_manager().generate_jwt(SimpleAuthManagerUser(username="ada", role="viewer"))
    root = FastAPI()
    (mounted,) = MagicVideoPlugin.fastapi_apps
    root.mount(mounted["url_prefix"], mounted["app"])
    client = TestClient(root, follow_redirects=False)
    dr = quickstart["dr"]
    for task_id in ("submit", "wait", "deliver"):
        link = xcom(dr, task_id, LINK_KEY)
        assert client.get(link).status_code == 401
        answer = client.get(link, cookies={"_token": token})
        assert answer.status_code == 302, (task_id, answer.text)
        assert requests.get(answer.headers["location"], timeout=30).content[4:8] == b"ftyp"
