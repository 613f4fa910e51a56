"""Subprocess mode: persistence across restarts and the request log."""

from __future__ import annotations

import time

import pytest
import requests

from airflow_provider_magicvideo.emulator import EmulatorProcess, run_emulator_process
from airflow_provider_magicvideo.emulator.testing import submit, wait_final

pytestmark = pytest.mark.integration


def test_state_dir_survives_kill_and_restart(tmp_path):
    state = tmp_path / "state"
    first = EmulatorProcess(render_seconds=2, fps=12, duration=1, state_dir=state).start()
    try:
        job_id = submit(first.base_url, headers={"Authorization": "Bearer k"}).json()["id"]
    finally:
        first.kill()  # mid-render: the restarted emulator must re-queue it
    with run_emulator_process(render_seconds=2, fps=12, duration=1, state_dir=state) as second:
        final, _ = wait_final(second.base_url, job_id)
        assert final["status"] == "completed"
        url = final["video"]["url"]
        assert requests.get(url, timeout=10).content[4:8] == b"ftyp"
        assert second.stats()["jobs_by_status"] == {"completed": 1}
    with run_emulator_process(render_seconds=2, state_dir=state) as third:
        old_port_url = url.replace(url.split("/files/")[0], third.root_url)
        response = requests.get(old_port_url, timeout=10)  # signed before the restart, still valid
        assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"


def test_request_log_never_contains_the_key(tmp_path):
    secret = "sk-super-secret-value-42"
    with run_emulator_process(render="fast", render_seconds=0.3, keys=[secret]) as server:
        good = {"Authorization": f"Bearer {secret}"}
        job_id = submit(server.base_url, headers=good).json()["id"]
        submit(server.base_url, headers={"Authorization": f"Bearer {secret}x"})
        submit(server.base_url, {"model": "bad"}, headers=good)
        time.sleep(0.5)
        requests.get(
            f"{server.base_url}/video/generations", params={"generation_id": job_id}, headers=good, timeout=5
        )
        server.set_faults("server_errors", error_rate=1.0)
        submit(server.base_url, headers=good)
    log = server.log()
    assert secret not in log
    assert f"POST /v2/video/generations 200 gen={job_id}" in log
    assert "POST /v2/video/generations 401" in log
    assert "POST /v2/video/generations 400" in log
    assert f"GET /v2/video/generations 200 gen={job_id}" in log
    assert "uvicorn.access" not in log
