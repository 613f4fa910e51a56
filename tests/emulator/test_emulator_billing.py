"""Charging on completion and GET /v1/billing/balance, over a real socket, with the emulator's clock held.

Docs: ``request-tracing-and-cost.md`` and ``account-balance.md`` (async video is charged when the generation
reports ``completed``; failed requests are never charged), ``billing-balance-v1.json`` (the shape).
"""

from __future__ import annotations

import re

import pytest

from airflow_provider_magicvideo.emulator import run_emulator
from airflow_provider_magicvideo.emulator.backend import UNLIMITED_BALANCE
from airflow_provider_magicvideo.emulator.catalogue import CREDITS_PER_GENERATION
from airflow_provider_magicvideo.emulator.testing import AUTH, balance, submit, wait_status

pytestmark = pytest.mark.integration
PRICE = CREDITS_PER_GENERATION
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
T2V = {"model": "magic/text-to-video", "prompt": "p"}


def credits(server) -> int:
    return balance(server.base_url).json()["balance"]


def test_balance_has_the_documented_shape(fast):
    response = balance(fast.base_url)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "balance", "lowBalance", "lowBalanceThreshold", "lastUpdated", "autoDebitStatus", "status",
        "statusExplanation",
    }
    assert body["balance"] == UNLIMITED_BALANCE and isinstance(body["balance"], int)
    assert body["lowBalance"] is False and body["lowBalanceThreshold"] == 10_000
    assert ISO_Z.match(body["lastUpdated"])
    assert body["autoDebitStatus"] == "enabled"  # no finite --credits: behaves like auto top-up
    assert body["status"] == "current" and body["statusExplanation"] == "Balance is current and up to date"


def test_balance_needs_a_valid_key(fast):
    response = balance(fast.base_url, headers={})
    assert response.status_code == 401
    assert response.json()["message"].startswith("This request requires a valid API key.")


def test_charged_when_completed_not_at_post(fast):
    fast.pause_clock()
    job_id = submit(fast.base_url).json()["id"]
    assert credits(fast) == UNLIMITED_BALANCE  # queued: only a quote so far
    fast.advance_clock(5)
    assert credits(fast) == UNLIMITED_BALANCE  # generating: still nothing charged
    fast.complete_pending()
    wait_status(fast.base_url, job_id, "completed")
    assert credits(fast) == UNLIMITED_BALANCE - PRICE


def test_errors_and_refused_requests_cost_nothing(fast):
    fast.pause_clock()
    fast.set_faults(render_error_rate=1.0)
    failed = submit(fast.base_url).json()["id"]
    fast.set_faults(error_rate=1.0, error_codes=[503])
    assert submit(fast.base_url).status_code == 503
    fast.set_faults("none")
    assert submit(fast.base_url, {"model": "magic/image-to-video"}).status_code == 400
    fast.advance_clock(20)
    wait_status(fast.base_url, failed, "error")
    assert credits(fast) == UNLIMITED_BALANCE


def test_balances_are_per_key(fast):
    fast.pause_clock()
    job_id = submit(fast.base_url, headers={"Authorization": "Bearer other-key"}).json()["id"]
    fast.complete_pending()
    wait_status(fast.base_url, job_id, "completed")
    assert credits(fast) == UNLIMITED_BALANCE
    assert balance(fast.base_url, {"Authorization": "Bearer other-key"}).json()["balance"] == UNLIMITED_BALANCE - PRICE


def test_finite_credits_hold_in_flight_renders_and_refund_errors():
    with run_emulator(render="fast", render_seconds=10, credits=2 * PRICE + 5_000) as server:
        server.pause_clock()
        first = submit(server.base_url, T2V).json()["id"]
        server.set_faults(render_error_rate=1.0)
        second = submit(server.base_url, T2V).json()["id"]
        server.set_faults("none")
        refused = submit(server.base_url, T2V)  # two renders in flight hold the whole balance
        assert refused.status_code == 403 and refused.json()["message"].startswith("You've run out of credits.")
        body = balance(server.base_url).json()
        assert body["balance"] == 2 * PRICE + 5_000 and body["autoDebitStatus"] == "disabled"
        server.advance_clock(20)
        wait_status(server.base_url, first, "completed")
        wait_status(server.base_url, second, "error")  # not charged: its hold is released
        body = balance(server.base_url).json()
        assert body["balance"] == PRICE + 5_000 and body["lowBalance"] is False
        third = submit(server.base_url, T2V).json()["id"]
        server.complete_pending()
        wait_status(server.base_url, third, "completed")
        body = balance(server.base_url).json()
        assert body["balance"] == 5_000 and body["lowBalance"] is True
        assert submit(server.base_url, T2V).status_code == 403
        assert server.stats()["jobs_created"] == 3


def test_no_credits_profile_reports_an_empty_balance(fast):
    fast.set_faults("no_credits")
    assert submit(fast.base_url).status_code == 403
    body = balance(fast.base_url, AUTH).json()
    assert body["balance"] == 0 and body["lowBalance"] is True
