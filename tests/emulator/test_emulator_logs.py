"""GET /v2/logs over a real socket: rows, ids, filters, window rules, pagination, rate limit, ingestion delay.

Docs: ``usage-logs.md``, ``logs-v2.json``, ``api-key-usage.md`` (window rules). Time is driven with the
emulator's clock: rows become visible ``log_delay`` (default 1 s) after their request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from airflow_provider_magicvideo.emulator import run_emulator
from airflow_provider_magicvideo.emulator.testing import AUTH, logs, status, submit, wait_status

pytestmark = pytest.mark.integration
ROW_KEYS = {"created", "status", "origin", "model", "cost", "tokens", "request_id", "inference_id",
            "client_request_id"}


def rows(server, params=None, headers=None) -> list[dict]:
    response = logs(server.base_url, params, headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_a_submit_becomes_one_row_after_the_ingestion_delay(fast):
    fast.pause_clock()
    posted = submit(fast.base_url, headers={**AUTH, "X-Client-Request-Id": "airflow.dag.task:1"})
    job_id = posted.json()["id"]
    assert rows(fast) == []  # the analytics pipeline has not caught up yet
    fast.advance_clock(1.0)
    [row] = rows(fast)
    assert set(row) == ROW_KEYS
    assert row["inference_id"] == job_id == posted.headers["x-inference-id"]
    assert row["client_request_id"] == "airflow.dag.task:1"
    assert row["request_id"] == posted.headers["x-request-id"]
    assert row["status"] == "succeeded" and row["origin"] == "api" and row["model"] == "magic/image-to-video"
    assert row["cost"] == {"usd": 0, "credits": 0}  # not charged before completed
    assert row["tokens"] == {"input": 0, "output": 0, "total": 0}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row["created"])
    fast.complete_pending()
    wait_status(fast.base_url, job_id, "completed")
    assert rows(fast)[0]["cost"] == {"usd": 0.525, "credits": 1_050_000}
    for _ in range(3):  # polls are not inference requests: no rows
        requests.get(f"{fast.base_url}/video/generations", params={"generation_id": job_id}, headers=AUTH, timeout=5)
    assert len(rows(fast)) == 1


def test_failed_requests_and_failed_renders_are_failed_rows_with_zero_cost(fast):
    fast.pause_clock()
    submit(fast.base_url, {"model": "magic/image-to-video"}, headers={**AUTH, "X-Client-Request-Id": "bad-body"})
    fast.set_faults(render_error_rate=1.0)
    broken = submit(fast.base_url).json()["id"]
    fast.set_faults("none")
    submit(fast.base_url, headers={"Authorization": "Bearer "})  # unauthenticated: nobody's row
    fast.advance_clock(20)
    wait_status(fast.base_url, broken, "error")
    newest, oldest = rows(fast)
    assert newest["inference_id"] == broken and newest["status"] == "failed" and newest["cost"]["credits"] == 0
    assert oldest["status"] == "failed" and oldest["client_request_id"] == "bad-body"
    assert oldest["inference_id"].startswith("f_") and oldest["inference_id"] != broken
    assert [r["inference_id"] for r in rows(fast, {"period": "1h", "status": "failed"})] == [broken,
                                                                                             oldest["inference_id"]]
    assert rows(fast, {"period": "1h", "status": "succeeded"}) == []


def test_a_dropped_submit_is_in_the_logs(fast):
    fast.set_faults("drop_after_post")
    with pytest.raises(requests.exceptions.ConnectionError):
        submit(fast.base_url, headers={**AUTH, "X-Client-Request-Id": "drop-1"})
    fast.advance_clock(1.0)
    [row] = rows(fast, [("period", "1h"), ("model", "magic/image-to-video")])
    assert row["client_request_id"] == "drop-1" and row["status"] == "succeeded"
    assert fast.stats()["jobs_created"] == 1
    assert status(fast.base_url, row["inference_id"]).status_code == 200  # the generation the client never saw


def test_filters_repeat_and_never_split_on_commas(fast):
    fast.pause_clock()
    submit(fast.base_url)
    submit(fast.base_url, {"model": "magic/text-to-video", "prompt": "p"})
    fast.advance_clock(1.0)
    both = [("period", "1h"), ("model", "magic/image-to-video"), ("model", "magic/text-to-video")]
    assert len(rows(fast, both)) == 2
    assert rows(fast, {"period": "1h", "model": "magic/image-to-video,magic/text-to-video"}) == []
    assert [r["model"] for r in rows(fast, {"period": "1h", "model": "text-to-video"})] == ["magic/text-to-video"]
    assert len(rows(fast, [("period", "1h"), ("status", "succeeded"), ("status", "failed")])) == 2
    comma = logs(fast.base_url, {"period": "1h", "status": "succeeded,failed"})
    assert comma.status_code == 400 and comma.json()["meta"][0]["path"] == ["status"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"period": "1h", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
        {"period": "7x"},
        {"period": "0d"},
        {"start": "2026-01-01T00:00:00Z"},
        {"start": "yesterday", "end": "2026-01-02T00:00:00Z"},
        {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {"start": "2026-01-01T00:00:00Z", "end": "2026-04-03T00:00:01Z"},
        {"period": "93d"},
        {"period": "1h", "limit": "0"},
        {"period": "1h", "limit": "101"},
        {"period": "1h", "offset": "-1"},
        {"period": "1h", "status": "pending"},
    ],
)
def test_documented_400s(fast, params):
    response = logs(fast.base_url, params or [("limit", "5")])
    body = response.json()
    assert response.status_code == 400 and body["message"] == "Query validation error!"
    assert body["statusCode"] == "400" and body["path"] == "/v2/logs" and body["meta"]


def test_start_end_window_reads_naive_times_as_utc(fast):
    now = datetime.fromtimestamp(fast.pause_clock(), UTC)
    submit(fast.base_url)
    fast.advance_clock(1.0)
    naive = "%Y-%m-%dT%H:%M:%S"
    around = {"start": (now - timedelta(minutes=1)).strftime(naive), "end": (now + timedelta(minutes=1)).strftime(naive)}
    assert len(rows(fast, around)) == 1
    later = {"start": (now + timedelta(minutes=1)).isoformat(), "end": (now + timedelta(minutes=2)).isoformat()}
    assert rows(fast, later) == []


def test_pagination_newest_first(fast):
    fast.pause_clock()
    ids = []
    for _ in range(5):
        ids.append(submit(fast.base_url).json()["id"])
        fast.advance_clock(0.01)
    fast.advance_clock(1.0)
    first = logs(fast.base_url, {"period": "1h", "limit": 2}).json()
    assert [r["inference_id"] for r in first["data"]] == ids[::-1][:2]
    assert first["pagination"] == {"limit": 2, "offset": 0, "total": 5, "has_more": True}
    last = logs(fast.base_url, {"period": "1h", "limit": 2, "offset": 4}).json()
    assert [r["inference_id"] for r in last["data"]] == [ids[0]]
    assert last["pagination"] == {"limit": 2, "offset": 4, "total": 5, "has_more": False}
    assert logs(fast.base_url).json()["pagination"]["limit"] == 50


def test_keys_see_only_their_own_rows(fast):
    submit(fast.base_url, headers={"Authorization": "Bearer sk-other-key"})
    fast.advance_clock(1.0)
    assert rows(fast) == []
    assert len(rows(fast, headers={"Authorization": "Bearer sk-other-key"})) == 1
    own = logs(fast.base_url, {"period": "1h", "key_prefix": "sk-other"}, {"Authorization": "Bearer sk-other-key"})
    assert own.status_code == 200
    assert logs(fast.base_url, {"period": "1h", "key_prefix": "sk-else"}).status_code == 403
    assert logs(fast.base_url, headers={}).status_code == 401


def test_429_above_200_requests_per_60_seconds(fast):
    fast.pause_clock()
    with requests.Session() as session:
        codes = [session.get(f"{fast.root_url}/v2/logs", params={"period": "1h"}, headers=AUTH, timeout=5).status_code
                 for _ in range(201)]
    assert codes[:200] == [200] * 200 and codes[200] == 429
    assert logs(fast.base_url).json()["message"] == "Too Many Requests"
    fast.advance_clock(60.0)
    assert logs(fast.base_url).status_code == 200


def test_late_logs_profile_rows_appear_after_30_to_60_seconds(fast):
    fast.set_faults("late_logs")
    start = fast.pause_clock()
    job_ids = [submit(fast.base_url, headers={**AUTH, "X-Client-Request-Id": f"late-{i}"}).json()["id"] for i in range(5)]
    fast.advance_clock(29.9)
    assert rows(fast) == []
    fast.advance_clock(30.2)
    assert sorted(r["inference_id"] for r in rows(fast)) == sorted(job_ids)
    assert fast.clock()["now"] >= start + 60


def test_configured_delay_and_logs_outage():
    with run_emulator(render="fast", render_seconds=10, log_delay=5.0) as server:
        server.pause_clock()
        submit(server.base_url)
        server.advance_clock(4.9)
        assert rows(server) == []
        server.advance_clock(0.2)
        assert len(rows(server)) == 1
        server.set_faults("logs_unavailable")
        outage = logs(server.base_url)
        assert outage.status_code == 503 and outage.json()["message"] == "Service unavailable"
