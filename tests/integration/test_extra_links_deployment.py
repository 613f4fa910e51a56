"""The extra links through a real api-server: the plugin is mounted, the link needs a login, and answers 302 to an MP4.

Its own small deployment (LocalExecutor, PostgreSQL, one fast emulator process) running the shipped quickstart
DAG; it records no rows in the reliability table (that is the fault tier's).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = [pytest.mark.deployment, pytest.mark.integration]

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def quickstart_dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from airflow_provider_magicvideo.emulator.server import EmulatorProcess
    from tooling.deployment import deployment, drop_database, migrate_template, pg_user, random_text

    tmp = tmp_path_factory.mktemp("magicvideo-links")
    api_key = "sk-it-" + random_text(24)
    user = pg_user()
    template = migrate_template(user)
    emulator = EmulatorProcess(render_seconds=4, render="fast", state_dir=tmp / "emulator", keys=[api_key],
                               log_path=tmp / "emulator.log", log_level="warning").start()
    try:
        with deployment("LocalExecutor", {"magicvideo_default": emulator.base_url}, api_key, template, user,
                        DAGS) as dep:
            dep.wait_dag("magicvideo_quickstart")
            yield dep, api_key
    finally:
        emulator.stop()
        drop_database(template, user)


def test_links_of_a_real_run_redirect_logged_in_and_refuse_anonymous(quickstart_dep):
    dep, api_key = quickstart_dep
    run_id = dep.trigger("magicvideo_quickstart", {"output_dir": str(dep.out)})
    deferred_links: dict[str, Any] = {}

    def sample(tis: list[dict[str, Any]]) -> None:
        for ti in tis:
            if ti["state"] == "deferred" and ti["task_id"] not in deferred_links:
                deferred_links[ti["task_id"]] = _links(dep, run_id, ti["task_id"])

    assert dep.wait_run("magicvideo_quickstart", run_id, timeout=300, on_sample=sample, interval=0.5) == "success"
    assert "wait" in deferred_links, "the wait task was never seen deferred"
    assert deferred_links["wait"]["AI/ML API video"], deferred_links  # present while deferred, not null

    anonymous = requests.Session()
    for task_id in ("submit", "wait", "deliver"):
        links = _links(dep, run_id, task_id)
        link = links["AI/ML API video"]
        assert link.startswith(f"{dep.api}/magicvideo/dags/magicvideo_quickstart/runs/"), links
        if task_id == "deliver":
            assert links["Delivered video"] is None  # file://: hidden by the UI, never a dead link
        refused = anonymous.get(link, allow_redirects=False, timeout=30)
        assert refused.status_code == 401, (task_id, refused.status_code, refused.text[:200])
        assert "location" not in refused.headers
        answer = dep.session.get(link, allow_redirects=False, timeout=60)  # logged in (the deployment's JWT)
        assert answer.status_code == 302, (task_id, answer.status_code, answer.text[:300])
        location = answer.headers["location"]
        assert api_key not in location
        video = requests.get(location, timeout=60)
        assert video.status_code == 200 and video.content[4:8] == b"ftyp", task_id
        cookie = requests.get(link, cookies={"_token": dep.token}, allow_redirects=False, timeout=60)
        assert cookie.status_code == 302, "the UI's session cookie is a login too"
    log = (dep.logs / "api-server.log").read_text(errors="replace")
    assert api_key not in log
    assert "X-Amz-Signature" not in log


def _links(dep: Any, run_id: str, task_id: str) -> dict[str, Any]:
    for _ in range(3):
        try:
            return dep.rest("GET", f"/dags/magicvideo_quickstart/dagRuns/{run_id}/taskInstances/{task_id}/links")[
                "extra_links"]
        except RuntimeError:
            time.sleep(1)
    raise AssertionError(f"no links for {task_id}")
