"""An ambiguous submit becomes a reconnect through the usage log (issue #17, item 8), with ``requests-mock``.

The hook's clock is fake and advanced by its sleeps, so the lookup window passes without waiting.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from airflow_provider_magicvideo.account import iso_utc
from airflow_provider_magicvideo.exceptions import AmbiguousSubmitError
from airflow_provider_magicvideo.generation import GenerationStatus
from tests.hooks.support import BASE_URL, GENERATIONS_URL, FakeClock, payload

LOGS_URL = f"{BASE_URL}/logs"
IMAGE = "https://example.com/cat.png"
OURS = "dag_1:task_1:run_1:1"


@pytest.fixture(autouse=True)
def lookup_on(conn) -> None:
    conn(reconcile_window=180)


@pytest.fixture
def clock(hook) -> FakeClock:
    fake = FakeClock(start=time.time())  # real epoch seconds: the log's start/end are dates
    fake.attach(hook)
    return fake


def row(generation_id: str, *, status: str = "succeeded", client_request_id: str = OURS,
        created: float | None = None) -> dict[str, Any]:
    return {"created": iso_utc(created or time.time()), "status": status, "origin": "api",
            "model": "magic/image-to-video", "cost": {"usd": 0, "credits": 0}, "tokens": {},
            "request_id": "req-1", "inference_id": generation_id, "client_request_id": client_request_id}


def page(*rows: dict[str, Any], has_more: bool = False) -> dict[str, Any]:
    return {"data": list(rows), "pagination": {"limit": 100, "offset": 0, "total": len(rows), "has_more": has_more}}


def lost_post() -> dict[str, Any]:
    return {"exc": requests.exceptions.ReadTimeout("read timed out")}


def posts(requests_mock) -> int:
    return sum(1 for r in requests_mock.request_history if r.method == "POST")


def log_reads(requests_mock) -> list:
    return [r for r in requests_mock.request_history if r.url.startswith(LOGS_URL)]


def test_a_lost_answer_reconnects_to_the_logged_generation(hook, clock, requests_mock):
    requests_mock.post(GENERATIONS_URL, [lost_post()])
    # Rows arrive late: two empty looks, then this task's row (beside another task's).
    requests_mock.get(LOGS_URL, [{"json": page()}, {"json": page()},
                                 {"json": page(row("gen-other", client_request_id="someone-else"), row("gen-7"))}])
    requests_mock.get(GENERATIONS_URL, json=payload("generating", "gen-7"))
    recorded = []
    generation = hook.submit(image=IMAGE, on_created=lambda gid, credits: recorded.append((gid, credits)))
    assert generation.id == "gen-7" and generation.status is GenerationStatus.GENERATING
    assert recorded == [("gen-7", 1_050_000)]  # the lost answer's quote: the documented price
    assert posts(requests_mock) == 1
    reads = log_reads(requests_mock)
    assert len(reads) == 3
    assert reads[0].qs["model"] == ["magic/image-to-video"] and reads[0].qs["limit"] == ["100"]
    assert {"start", "end"} <= set(reads[0].qs)
    assert clock.slept == [5.0, 10.0]


def test_no_live_generation_after_the_whole_window_submits_once_more(hook, clock, conn, requests_mock):
    conn(reconcile_window=60)
    requests_mock.post(GENERATIONS_URL, [lost_post(), {"json": payload("queued", "gen-2")}])
    # This task's rows: a refused request and a generation that ended in error. Neither was billed.
    requests_mock.get(LOGS_URL, json=page(row("gen-bad", status="failed"), row("gen-err")))
    requests_mock.get(GENERATIONS_URL, json=payload("error", "gen-err"))
    generation = hook.submit(image=IMAGE)
    assert generation.id == "gen-2"
    assert posts(requests_mock) == 2
    assert sum(clock.slept) == pytest.approx(60)


def test_a_second_lost_answer_is_looked_up_but_never_resubmitted(hook, clock, conn, requests_mock):
    conn(reconcile_window=30)
    requests_mock.post(GENERATIONS_URL, [lost_post(), lost_post(), {"json": payload("queued", "gen-3")}])
    requests_mock.get(LOGS_URL, json=page())
    with pytest.raises(AmbiguousSubmitError, match="twice"):
        hook.submit(image=IMAGE)
    assert posts(requests_mock) == 2


@pytest.mark.parametrize("answer", [{"status_code": 503, "json": {"message": "Service unavailable"}},
                                    {"status_code": 200, "text": "<html>proxy</html>"},
                                    {"status_code": 200, "json": {"rows": []}},
                                    {"exc": requests.exceptions.ConnectionError("reset")}],
                         ids=["503", "html", "wrong-shape", "connection"])
def test_a_log_that_cannot_be_read_fails_without_resubmitting(hook, clock, conn, requests_mock, answer):
    conn(max_retries=0, reconcile_window=180)
    requests_mock.post(GENERATIONS_URL, [lost_post(), {"json": payload("queued", "gen-2")}])
    requests_mock.get(LOGS_URL, [{"json": page()}, answer])
    with pytest.raises(AmbiguousSubmitError, match="usage log could not be checked") as failed:
        hook.submit(image=IMAGE)
    assert posts(requests_mock) == 1
    assert OURS in str(failed.value)


def test_a_logged_generation_the_api_cannot_find_is_doubt_not_absence(hook, clock, conn, requests_mock):
    conn(reconcile_window=30)
    requests_mock.post(GENERATIONS_URL, [lost_post(), {"json": payload("queued", "gen-2")}])
    requests_mock.get(LOGS_URL, json=page(row("gen-ghost")))
    requests_mock.get(GENERATIONS_URL, status_code=404, json={"message": "Generation not found"})
    with pytest.raises(AmbiguousSubmitError, match="gen-ghost"):
        hook.submit(image=IMAGE)
    assert posts(requests_mock) == 1


def test_rows_before_the_submit_do_not_count(hook, clock, conn, requests_mock):
    conn(reconcile_window=10)
    requests_mock.post(GENERATIONS_URL, [lost_post(), {"json": payload("queued", "gen-2")}])
    requests_mock.get(LOGS_URL, json=page())
    hook.submit(image=IMAGE)
    start = log_reads(requests_mock)[0].qs["start"][0]
    # The window opens a minute (clock skew) before the submit was sent, not earlier.
    assert start.upper() == iso_utc(clock.now - sum(clock.slept) - 60).upper()


def test_paging_reads_every_page(hook, clock, requests_mock):
    requests_mock.post(GENERATIONS_URL, [lost_post()])
    requests_mock.get(LOGS_URL, [{"json": page(row("gen-x", client_request_id="other"), has_more=True)},
                                 {"json": page(row("gen-9"))}])
    requests_mock.get(GENERATIONS_URL, json=payload("completed", "gen-9"))
    assert hook.submit(image=IMAGE).id == "gen-9"
    assert [r.qs["offset"] for r in log_reads(requests_mock)] == [["0"], ["100"]]


def test_a_zero_window_fails_at_once_as_without_the_log(hook, clock, conn, requests_mock):
    conn(reconcile_window=0)
    requests_mock.post(GENERATIONS_URL, [lost_post()])
    with pytest.raises(AmbiguousSubmitError):
        hook.submit(image=IMAGE)
    assert log_reads(requests_mock) == []


def test_an_answered_refusal_is_not_looked_up(hook, clock, requests_mock):
    from airflow_provider_magicvideo.exceptions import RequestValidationError

    requests_mock.post(GENERATIONS_URL, status_code=400, json={"message": "Body validation error!"})
    with pytest.raises(RequestValidationError):
        hook.submit(image=IMAGE)
    assert log_reads(requests_mock) == []


# ------------------------------------------------------------------ many request ids at once (a batch task)
def test_find_generations_reads_the_log_once_per_look_for_every_request_id(hook, clock, requests_mock):
    ids = [f"{OURS}:row:{key}" for key in ("a", "b", "c")]
    requests_mock.get(LOGS_URL, [
        {"json": page(row("gen-a", client_request_id=ids[0]), row("gen-x", client_request_id="someone-else"))},
        {"json": page(row("gen-a", client_request_id=ids[0]), row("gen-c", client_request_id=ids[2]),
                      row("gen-bad", status="failed", client_request_id=ids[1]))},
    ])
    requests_mock.get(GENERATIONS_URL, [{"json": payload("generating", "gen-a")},
                                        {"json": payload("completed", "gen-c")}])
    found = hook.find_generations(ids, model="magic/image-to-video", since=clock.now)
    assert found[ids[0]].id == "gen-a" and found[ids[2]].status is GenerationStatus.COMPLETED
    assert found[ids[1]] is None  # its only row failed (not billed), and the whole window passed
    assert sum(clock.slept) == pytest.approx(180)
    looks = len(log_reads(requests_mock))
    assert looks == len(clock.slept) + 1  # one log read per look for all three ids, not one per id


def test_find_generations_is_ambiguous_when_the_log_cannot_be_read(hook, clock, requests_mock):
    requests_mock.get(LOGS_URL, status_code=503)
    with pytest.raises(AmbiguousSubmitError, match="usage log could not be checked"):
        hook.find_generations(["a", "b"], model="magic/image-to-video", since=clock.now)
