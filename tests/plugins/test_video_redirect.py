"""The api-server redirect behind "AI/ML API video": auth first, then a fresh, checked URL from the API.

The sub-application runs as the plugin mounts it, under ``/magicvideo`` of a FastAPI root app, with Airflow's
simple auth manager signing real JWTs; the API is the emulator on a real socket, its clock paused so a render
stays pending until the test releases it. The task instance → generation lookup is stubbed here (it reads
the metadata DB; tests/operators/test_extra_links.py checks it on real dag.test() runs).
"""

from __future__ import annotations

import io
import logging

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.plugins import MagicVideoPlugin, video_redirect
from tests.conftest import TEST_API_KEY

pytestmark = pytest.mark.integration

PATH = "/magicvideo/dags/campaign/runs/manual__1/tasks/submit/video"
JWT_SECRET = "test-jwt-secret-for-the-redirect-tests-" + "x" * 40  # >= 64 bytes for HS512


@pytest.fixture
def recorded(monkeypatch) -> dict[tuple[str, str, str, int], str]:
    """What each task instance recorded under the ``generation_id`` XCom."""
    table: dict[tuple[str, str, str, int], str] = {}

    def lookup(*, dag_id: str, run_id: str, task_id: str, map_index: int) -> str | None:
        return table.get((dag_id, run_id, task_id, map_index))

    monkeypatch.setattr(video_redirect, "recorded_generation_id", lookup)
    return table


@pytest.fixture
def client(airflow_db, monkeypatch) -> TestClient:
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_ISSUER", "airflow")  # Airflow 3.0 signs nothing without one
    from airflow.api_fastapi.app import create_auth_manager

    create_auth_manager()
    root = FastAPI()
    (mounted,) = MagicVideoPlugin.fastapi_apps
    root.mount(mounted["url_prefix"], mounted["app"])
    return TestClient(root, follow_redirects=False)


def token(role: str | None = "viewer") -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="ada", role=role))


def bearer(role: str | None = "viewer") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role)}"}


def submit(emulator) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 240)).save(buf, "PNG")
    hook = MagicVideoHook()
    try:
        return hook.submit(image=buf.getvalue(), template="Times Square Billboard").id
    finally:
        hook.close()


def release(emulator, generation_id: str) -> None:
    """Let the held render finish, and wait until the API reports it final (the MP4 is really encoded)."""
    emulator.complete_pending()
    hook = MagicVideoHook()
    try:
        hook.wait_for_generation(generation_id, poll_interval=1, timeout=60)
    finally:
        hook.close()


@pytest.fixture
def emulator(magicvideo_emulator, magicvideo_conn):
    magicvideo_conn(magicvideo_emulator.base_url)
    magicvideo_emulator.pause_clock()
    return magicvideo_emulator


def test_without_a_login_the_redirect_is_refused_before_anything_runs(client, recorded, emulator):
    recorded[("campaign", "manual__1", "submit", -1)] = submit(emulator)
    before = emulator.stats()
    for headers, cookies in (({}, {}), ({"Authorization": "Bearer not-a-jwt"}, {}), ({}, {"_token": "forged"})):
        client.cookies.clear()
        client.cookies.update(cookies)
        answer = client.get(PATH, headers=headers)
        assert answer.status_code in (401, 403), (headers, cookies, answer.status_code)
        assert "location" not in answer.headers
    assert emulator.stats() == before  # the API was not asked


def test_a_user_without_access_to_the_dag_is_refused(client, recorded, emulator):
    recorded[("campaign", "manual__1", "submit", -1)] = submit(emulator)
    assert client.get(PATH, headers=bearer(role=None)).status_code == 403


def test_logged_in_the_link_redirects_to_a_fresh_mp4_each_time(client, recorded, emulator, caplog):
    generation_id = submit(emulator)
    recorded[("campaign", "manual__1", "submit", -1)] = generation_id
    release(emulator, generation_id)
    client.cookies.set("_token", token())  # what the UI's browser sends on a click
    with caplog.at_level(logging.DEBUG):
        first = client.get(PATH)
    assert first.status_code == 302, first.text
    assert first.headers["cache-control"] == "no-store"
    location = first.headers["location"]
    assert location.startswith(emulator.base_url.removesuffix("/v2"))
    video = requests.get(location, timeout=30)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    emulator.advance_clock(11 * 60)  # long after the first URL expired: the link still works
    second = client.get(PATH, headers=bearer())
    assert second.status_code == 302
    assert second.headers["location"] != location
    assert requests.get(second.headers["location"], timeout=30).content[4:8] == b"ftyp"
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("airflow_provider_magicvideo"))
    assert "Redirecting to a fresh video URL of generation" in ours
    for text in (location, first.text, second.text, caplog.text):
        assert TEST_API_KEY not in text
    assert "X-Amz-Signature" not in ours  # the URL's signature is never logged by the provider


def test_the_map_index_and_conn_id_select_the_task_instance_and_connection(client, recorded, emulator,
                                                                            magicvideo_conn):
    magicvideo_conn(emulator.base_url, conn_id="mv_other")
    generation_id = submit(emulator)
    release(emulator, generation_id)
    recorded[("campaign", "manual__1", "render", 3)] = generation_id
    path = "/magicvideo/dags/campaign/runs/manual__1/tasks/render/video"
    assert client.get(path, params={"map_index": 3, "conn_id": "mv_other"}, headers=bearer()).status_code == 302
    missing = client.get(path, params={"map_index": 4}, headers=bearer())
    assert missing.status_code == 404
    assert missing.json()["detail"] == ("No generation recorded for task 'render'[4] of run 'manual__1' of DAG "
                                        "'campaign': it has not submitted one yet, or failed before the AI/ML API "
                                        "named it.")


def test_a_render_still_running_answers_409_then_302(client, recorded, emulator):
    generation_id = recorded[("campaign", "manual__1", "submit", -1)] = submit(emulator)
    pending = client.get(PATH, headers=bearer())
    assert pending.status_code == 409
    assert "still rendering" in pending.json()["detail"]
    release(emulator, generation_id)
    assert client.get(PATH, headers=bearer()).status_code == 302


def test_a_failed_or_unknown_generation_answers_404_with_the_reason(client, recorded, emulator):
    emulator.set_faults(render_error_rate=1.0)
    failed = submit(emulator)
    emulator.advance_clock(3600)  # past the moment the emulator makes the failure visible
    recorded[("campaign", "manual__1", "submit", -1)] = failed
    answer = client.get(PATH, headers=bearer())
    assert answer.status_code == 404
    assert answer.json()["detail"].startswith(f"Generation {failed} ended in error, no video")
    recorded[("campaign", "manual__1", "submit", -1)] = "no-such-generation"
    unknown = client.get(PATH, headers=bearer())
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "The AI/ML API does not know generation no-such-generation."


def test_only_magicvideo_connections_are_used(client, recorded, emulator, monkeypatch):
    recorded[("campaign", "manual__1", "submit", -1)] = submit(emulator)
    monkeypatch.setenv("AIRFLOW_CONN_SOME_HTTP", '{"conn_type": "http", "host": "https://example.com", '
                                                 '"password": "another-secret"}')
    for conn_id in ("some_http", "missing_conn"):
        answer = client.get(PATH, params={"conn_id": conn_id}, headers=bearer())
        assert answer.status_code == 404
        assert answer.json()["detail"] == f"No connection {conn_id!r} of type 'magicvideo' on this Airflow."


def test_a_video_url_the_guard_refuses_is_not_redirected_to(client, recorded, emulator, magicvideo_conn):
    generation_id = recorded[("campaign", "manual__1", "submit", -1)] = submit(emulator)
    release(emulator, generation_id)
    magicvideo_conn(emulator.base_url, allow_insecure_video_urls=False)  # the emulator serves http on loopback
    answer = client.get(PATH, headers=bearer())
    assert answer.status_code == 502
    assert "refuses to open" in answer.json()["detail"]
    assert "location" not in answer.headers
