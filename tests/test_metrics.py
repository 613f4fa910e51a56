"""The provider's ``Stats`` metrics (:mod:`airflow_provider_magicvideo.metrics`), captured at Airflow's backend.

The API and the CDN are faked with requests-mock; the submit's wait runs on a fake clock (the hook's
``clock``/``sleep`` and the operator's ``time``), so the render duration is exact and nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_magicvideo import metrics
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.operators import magicvideo as submit_module
from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from tests.conftest import TEST_API_KEY
from tests.hooks.support import BASE_URL, GENERATIONS_URL, MP4_BYTES, VIDEO_URL, FakeClock, payload

MODEL = "magic/image-to-video"
TAGS = {"model": MODEL, "template": "Thailand_Street"}  # the model's default template, made tag-safe
CREDITS = 70


@pytest.fixture(autouse=True)
def _public_test_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """``*.magic.test`` (served by requests-mock) resolves to a public documentation address, not DNS."""
    import socket

    from airflow_provider_magicvideo.hooks import video, video_url

    def resolve(host: str, port: int, **kwargs: Any) -> Any:
        if host.endswith(".magic.test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]
        return socket.getaddrinfo(host, port, **kwargs)

    monkeypatch.setattr(video, "check_video_url", lambda url, **kw: video_url.check_video_url(url, resolve=resolve, **kw))


def context() -> dict[str, Any]:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    xcoms: dict[str, Any] = {}
    ti = SimpleNamespace(dag_id="campaign", task_id="render", run_id="manual__2026", map_index=-1, try_number=1,
                         xcoms=xcoms, xcom_push=lambda key, value: xcoms.__setitem__(key, value))
    return {"ti": ti, "task_state_store": None, "dag": SimpleNamespace(task_ids=["render"]),
            "outlet_events": OutletEventAccessors()}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One fake wall clock for the hook's wait and the operator's submit/complete times."""
    fake = FakeClock(start=1_000.0)
    monkeypatch.setattr(submit_module, "time", SimpleNamespace(time=fake.time))
    return fake


def submit_operator(monkeypatch: pytest.MonkeyPatch, clock: FakeClock, **kwargs: Any) -> MagicVideoSubmitOperator:
    op = MagicVideoSubmitOperator(task_id="render", image="https://example.com/cat.png", wait_for_completion=True,
                                  poll_interval=5, **kwargs)
    monkeypatch.setattr(op, "get_hook", lambda ctx: clock.attach(MagicVideoHook(client_request_id="cr-1")))
    return op


# ============================================================================================ the path
def test_submit_complete_deliver_sends_each_metric_with_its_tags(stats, clock, monkeypatch, requests_mock,
                                                                  magicvideo_conn, tmp_path):
    magicvideo_conn(BASE_URL, max_retries=0)
    requests_mock.post(GENERATIONS_URL, json=payload("queued", meta={"usage": {"credits_used": CREDITS}}))
    requests_mock.get(GENERATIONS_URL, [
        {"status_code": 503, "json": {"error": "busy"}},  # one tolerated poll failure
        {"json": payload("queued")},
        {"json": payload("completed")},  # also what delivery's fresh-URL request gets
    ])
    requests_mock.get(VIDEO_URL.split("?")[0], content=MP4_BYTES, headers={"Content-Type": "video/mp4"})

    result = submit_operator(monkeypatch, clock).execute(context())
    deliver = MagicVideoDeliverOperator(task_id="deliver", generation_id=result, destination=str(tmp_path / "v.mp4"))
    deliver.execute(context())

    calls = stats.ours()
    *exact, (kind, name, elapsed, tags) = calls
    assert exact == [
        ("incr", metrics.GENERATION_SUBMITTED, 1, TAGS),
        ("incr", metrics.POLL_FAILURES, 1, {"error": "ServerError"}),
        ("incr", metrics.GENERATION_COMPLETED, 1, TAGS),
        ("incr", metrics.GENERATION_CREDITS, CREDITS, TAGS),
        # submitted at 1000 on the fake clock; completed after two 5 s waits (the failed poll and "queued")
        ("timing", metrics.GENERATION_DURATION, timedelta(seconds=10), TAGS),
        ("incr", metrics.DELIVERY_BYTES, len(MP4_BYTES), {"scheme": "file"}),
    ]
    assert (kind, name, tags) == ("timing", metrics.DELIVERY_DURATION, {"scheme": "file", "outcome": "written"})
    assert isinstance(elapsed, timedelta) and elapsed >= timedelta(0)
    assert clock.slept == [5, 5]
    assert TEST_API_KEY not in repr(calls) and "Signature" not in repr(calls)


def test_a_generation_that_ends_in_error_is_counted_as_failed(stats, clock, monkeypatch, requests_mock,
                                                               magicvideo_conn):
    magicvideo_conn(BASE_URL, max_retries=0)
    requests_mock.post(GENERATIONS_URL, json=payload("queued"))
    requests_mock.get(GENERATIONS_URL, json=payload("error"))

    with pytest.raises(AirflowFailException):
        submit_operator(monkeypatch, clock, template="New York Times Square (77)").execute(context())
    assert stats.ours() == [
        ("incr", metrics.GENERATION_SUBMITTED, 1, {"model": MODEL, "template": "New_York_Times_Square__77_"}),
        ("incr", metrics.GENERATION_FAILED, 1, {"model": MODEL, "template": "New_York_Times_Square__77_"}),
    ]


def test_a_delivery_that_finds_the_same_bytes_reports_them_unchanged(stats, requests_mock, magicvideo_conn,
                                                                     tmp_path):
    magicvideo_conn(BASE_URL, max_retries=0)
    requests_mock.get(GENERATIONS_URL, json=payload("completed"))
    requests_mock.get(VIDEO_URL.split("?")[0], content=MP4_BYTES, headers={"Content-Type": "video/mp4"})
    (tmp_path / "v.mp4").write_bytes(MP4_BYTES)

    MagicVideoDeliverOperator(task_id="deliver", generation_id="gen-1", destination=str(tmp_path / "v.mp4"),
                              ).execute(context())
    assert [(name, tags) for _, name, _, tags in stats.ours()] == [
        (metrics.DELIVERY_BYTES, {"scheme": "file"}),
        (metrics.DELIVERY_DURATION, {"scheme": "file", "outcome": "unchanged"}),
    ]


def test_a_deferred_wait_times_the_render_from_the_recorded_submit(stats, clock, monkeypatch):
    op = submit_operator(monkeypatch, clock, deferrable=True)
    clock.now = 1_042.0  # when the task resumes after the trigger fired
    event = {"status": "success", "generation_id": "gen-1",
             "result": {"generation_id": "gen-1", "status": "completed", "video_url": VIDEO_URL,
                        "url_expires_at": None}}
    op.execute_complete(context(), event=event, submission={
        "model": MODEL, "template": "Thailand Street", "generation_id": "gen-1", "submitted_at": 1_000.0,
        "credits_used": CREDITS})
    assert stats.ours() == [
        ("incr", metrics.GENERATION_COMPLETED, 1, TAGS),
        ("incr", metrics.GENERATION_CREDITS, CREDITS, TAGS),
        ("timing", metrics.GENERATION_DURATION, timedelta(seconds=42), TAGS),
    ]


def test_a_sensor_counts_the_completion_it_sees_without_a_duration(stats):
    from airflow_provider_magicvideo.sensors.magicvideo import MagicVideoSensor

    sensor = MagicVideoSensor(task_id="wait", generation_id={"generation_id": "gen-1", "model": MODEL,
                                                             "template": "Thailand Street", "credits_used": CREDITS})
    event = {"status": "success", "generation_id": "gen-1",
             "result": {"generation_id": "gen-1", "status": "completed", "video_url": VIDEO_URL,
                        "url_expires_at": None}}
    sensor.execute_complete(context(), event=event)
    assert stats.ours() == [("incr", metrics.GENERATION_COMPLETED, 1, TAGS),
                            ("incr", metrics.GENERATION_CREDITS, CREDITS, TAGS)]


# ============================================================================================ the module
def test_tag_values_are_safe_for_line_protocols_and_bounded():
    metrics_tags = metrics._generation_tags("magic/video-to-video", "Neon, City: v=2")
    assert metrics_tags == {"model": "magic/video-to-video", "template": "Neon__City__v_2"}
    assert metrics._generation_tags(None, "")["template"] == "unknown"
    assert len(metrics._tag("x" * 500)) == 100


def test_no_credits_and_no_submit_time_send_only_the_count(stats):
    metrics.generation_completed({"model": MODEL, "template": "Thailand Street", "credits_used": None},
                                 submitted_at=None, now=2_000.0)
    assert stats.ours() == [("incr", metrics.GENERATION_COMPLETED, 1, TAGS)]


def test_a_failing_metrics_backend_never_fails_the_caller(monkeypatch):
    class Broken:
        def incr(self, *args: Any, **kwargs: Any) -> None:
            raise OSError("statsd is down")

        timing = incr

    monkeypatch.setattr(metrics, "_stats", Broken)
    metrics.generation_submitted(MODEL, "x")
    metrics.generation_completed({"model": MODEL, "credits_used": 3}, submitted_at=1.0, now=2.0)
    metrics.delivery_finished(scheme="s3", size=10, seconds=1.0, written=True)
