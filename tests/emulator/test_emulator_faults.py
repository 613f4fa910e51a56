"""Every fault profile and knob, through a real socket."""

from __future__ import annotations

import json
import time

import pytest
import requests

from airflow_provider_magicvideo.emulator.faults import PROFILES, FaultInjector, FaultKnobs
from airflow_provider_magicvideo.emulator.testing import AUTH, status, submit, wait_final

pytestmark = pytest.mark.integration


def test_profiles_and_knobs_compose_and_are_reported(emulator):
    config = emulator.set_faults("rate_limit,slow", error_rate=0.25)
    assert config["profile"] == ["rate_limit", "slow"]
    assert config["rate_limit_burst"] == 3 and config["delay_seconds"] == 1.0 and config["error_rate"] == 0.25
    assert emulator.faults() == config
    response = requests.post(f"{emulator.root_url}/_emulator/faults", json={"profile": "nope"}, timeout=5)
    assert response.status_code == 400
    response = requests.post(f"{emulator.root_url}/_emulator/faults", json={"bogus_knob": 1}, timeout=5)
    assert response.status_code == 400
    emulator.reset()
    assert emulator.faults()["profile"] == []


def test_rate_limit_bursts_with_retry_after(emulator):
    emulator.set_faults(rate_limit_burst=2, rate_limit_interval=1, retry_after=7)
    codes = [submit(emulator.base_url).status_code for _ in range(6)]
    assert codes == [429, 429, 200, 429, 429, 200]
    limited = submit(emulator.base_url)
    assert limited.headers["Retry-After"] == "7"
    assert limited.json()["statusCode"] == "429"
    assert emulator.stats()["requests"] == {"POST 429": 5, "POST 200": 2}


def test_rate_limit_profile_single_burst_then_passes(emulator):
    emulator.set_faults(rate_limit_burst=3)
    codes = [status(emulator.base_url, "f_x").status_code for _ in range(5)]
    assert codes == [429, 429, 429, 404, 404]


def test_server_errors_are_seeded_and_cover_codes(emulator):
    emulator.set_faults(error_rate=1.0, error_codes=[502])
    response = submit(emulator.base_url)
    assert response.status_code == 502 and response.json()["statusCode"] == "502"
    assert emulator.stats()["jobs_created"] == 0

    def run() -> list[int]:
        emulator.set_faults("server_errors", error_rate=0.5)
        return [status(emulator.base_url, "f_x").status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second  # same seed, same sequence
    assert set(first) - {404} <= {500, 502, 503, 504}
    assert 404 in first and len(set(first)) > 1


def test_slow_delays_answers(emulator):
    emulator.set_faults(delay_seconds=0.6)
    started = time.monotonic()
    assert status(emulator.base_url, "f_x").status_code == 404
    assert time.monotonic() - started >= 0.6


def test_drop_after_post_resets_connection_but_creates_job(emulator):
    emulator.set_faults("drop_after_post")
    with pytest.raises(requests.exceptions.ConnectionError):
        submit(emulator.base_url, headers={**AUTH, "X-Client-Request-Id": "drop-1"})
    stats = emulator.stats()
    assert stats["jobs_created"] == 1
    assert stats["posts_by_client_request_id"] == {"drop-1": 1}
    assert stats["requests"] == {"POST dropped": 1}
    emulator.set_faults("none")
    assert submit(emulator.base_url).status_code == 200  # the server is still healthy


def test_malformed_json_on_status(emulator):
    job_id = submit(emulator.base_url).json()["id"]
    emulator.set_faults(malformed_json_rate=1.0)
    response = status(emulator.base_url, job_id)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_unknown_status_then_completes(emulator):
    emulator.set_faults(unknown_status_rate=1.0)
    job_id = submit(emulator.base_url).json()["id"]
    final, seen = wait_final(emulator.base_url, job_id)
    assert final["status"] == "completed"
    assert set(seen[:-1]) == {"processing"}


def test_render_error(emulator):
    emulator.set_faults("render_error", render_error_rate=1.0)
    emulator.pause_clock()
    job_id = submit(emulator.base_url).json()["id"]
    assert status(emulator.base_url, job_id).json()["status"] == "queued"
    emulator.advance_clock(1.0)
    final, _ = wait_final(emulator.base_url, job_id)
    assert final["status"] == "error" and final["error"]["name"] == "RenderError"


def test_no_credits(emulator):
    emulator.set_faults("no_credits")
    response = submit(emulator.base_url)
    assert response.status_code == 403
    assert response.json()["message"].startswith("You've run out of credits.")


def test_every_profile_builds():
    for name in PROFILES:
        assert FaultKnobs.build(name).profile == (() if name == "none" else (name,))


def test_injector_rates_are_deterministic_per_seed():
    knobs = FaultKnobs.build({"render_error_rate": 0.3})
    injectors = [FaultInjector(knobs, seed=s) for s in (1, 1, 2)]
    draws = [[injector.render_error() for _ in range(50)] for injector in injectors]
    assert draws[0] == draws[1] != draws[2]
    assert 5 < sum(draws[0]) < 30
