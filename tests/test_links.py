"""The extra links: what each task's link is, built without reading any XCom (see airflow_provider_magicvideo.links)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_magicvideo import links
from airflow_provider_magicvideo.links import (
    MagicVideoDeliveredLink,
    MagicVideoLink,
    s3_console_url,
    video_redirect_path,
)
from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from airflow_provider_magicvideo.sensors.magicvideo import MagicVideoSensor

RUN_ID = "manual__2026-12-02T18:29:22.082434+00:00"


def ti_key(task_id: str = "submit", map_index: int = -1) -> SimpleNamespace:
    return SimpleNamespace(dag_id="campaign", task_id=task_id, run_id=RUN_ID, map_index=map_index, try_number=1)


@pytest.fixture(autouse=True)
def no_xcom_reads(monkeypatch):
    """A link that read an XCom would log "[error] XCom not found" on the worker before the XCom exists."""
    from airflow.providers.common.compat.sdk import XCom

    def refuse(*args, **kwargs):
        raise AssertionError("an extra link read an XCom")

    for name in ("get_value", "get_one", "get_many"):
        monkeypatch.setattr(XCom, name, refuse, raising=False)


@pytest.fixture
def base_url(monkeypatch):
    def _set(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
        else:
            monkeypatch.setenv("AIRFLOW__API__BASE_URL", value)

    return _set


def test_video_link_of_every_task_type_is_the_redirect_of_its_task_instance(base_url):
    base_url("https://airflow.example.com/")
    for op in (MagicVideoSubmitOperator(task_id="submit", image="x.png", conn_id="mv_prod"),
               MagicVideoSensor(task_id="wait", generation_id="g", conn_id="mv_prod"),
               MagicVideoDeliverOperator(task_id="deliver", generation_id="g", destination="/tmp/x.mp4",
                                         conn_id="mv_prod")):
        (link,) = [link for link in op.operator_extra_links if isinstance(link, MagicVideoLink)]
        assert link.name == "AI/ML API video"
        assert link.get_link(op, ti_key=ti_key(op.task_id)) == (
            "https://airflow.example.com/magicvideo/dags/campaign/runs/manual__2026-12-02T18%3A29%3A22.082434%2B00%3A00"
            f"/tasks/{op.task_id}/video?map_index=-1&conn_id=mv_prod")


def test_video_link_keeps_the_base_url_path_and_is_relative_without_one(base_url):
    op = MagicVideoSubmitOperator(task_id="render", image="x.png")
    base_url("https://corp.example.com/airflow")
    assert MagicVideoLink().get_link(op, ti_key=ti_key("render", 7)).startswith(
        "https://corp.example.com/airflow/magicvideo/dags/campaign/runs/")
    base_url("")
    link = MagicVideoLink().get_link(op, ti_key=ti_key("render", 7))
    assert link.startswith("/magicvideo/dags/campaign/runs/")  # same origin as the UI: it opens it in place
    assert link.endswith("/tasks/render/video?map_index=7&conn_id=magicvideo_default")


def test_redirect_path_quotes_every_segment():
    path = video_redirect_path(dag_id="d ?#", run_id="r/1", task_id="t&x", map_index=2, conn_id="a&b=c")
    assert path == "/magicvideo/dags/d%20%3F%23/runs/r%2F1/tasks/t%26x/video?map_index=2&conn_id=a%26b%3Dc"


def test_delivered_link_is_the_s3_console_page_after_an_s3_delivery():
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id="g", destination="s3://campaigns/x.mp4")
    link = MagicVideoDeliveredLink()
    assert link.name == "Delivered video"
    assert link.get_link(op, ti_key=ti_key("deliver")) == ""  # nothing delivered yet (a failed try): hidden
    op.delivered_uri = "s3://campaigns/2026-01-02/sku 1.mp4"
    assert link.get_link(op, ti_key=ti_key("deliver")) == (
        "https://s3.console.aws.amazon.com/s3/object/campaigns?prefix=2026-01-02%2Fsku%201.mp4")


@pytest.mark.parametrize("uri", ["file:///tmp/out.mp4", "/tmp/out.mp4", "gs://b/k.mp4", "s3://bucket", "s3:///k"])
def test_delivered_link_is_hidden_where_the_store_has_no_browsable_page(uri):
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id="g", destination=uri)
    op.delivered_uri = uri
    assert MagicVideoDeliveredLink().get_link(op, ti_key=ti_key("deliver")) == ""
    assert s3_console_url(uri) is None


def test_every_task_has_a_link_that_is_never_empty():
    """The 3.3 UI shows the "Extra Links" heading when a task has links; each has one that always has a value."""
    for cls in (MagicVideoSubmitOperator, MagicVideoSensor, MagicVideoDeliverOperator):
        assert any(isinstance(link, MagicVideoLink) for link in cls.operator_extra_links), cls
    assert links.URL_PREFIX == "/magicvideo"


def test_push_links_now_writes_the_values_a_running_task_shows(base_url):
    """Airflow writes link values only when a try ends: the operators write them when it starts, too."""
    from airflow_provider_magicvideo.links import push_links_now

    base_url(None)
    pushed: dict[str, str] = {}
    ti = SimpleNamespace(**vars(ti_key("deliver")), xcom_push=lambda key, value: pushed.__setitem__(key, value))
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id="g", destination="/tmp/x.mp4")
    push_links_now(op, {"ti": ti})
    assert pushed == {"_link_MagicVideoLink": MagicVideoLink().get_link(op, ti_key=ti)}  # "" values are not written


def test_a_link_push_that_fails_at_try_start_does_not_fail_the_try(base_url, caplog):
    """The values are a convenience Airflow writes again when the try ends: an execution-API hiccup while
    writing them early is logged, never the reason a render is not submitted."""
    from airflow_provider_magicvideo.links import push_links_now

    base_url(None)

    def refuse(key: str, value: str) -> None:
        raise ConnectionError("XCom push: 503 from the execution API")

    ti = SimpleNamespace(**vars(ti_key("submit")), xcom_push=refuse)
    op = MagicVideoDeliverOperator(task_id="submit", generation_id="g", destination="/tmp/x.mp4")
    with caplog.at_level("WARNING", logger="airflow_provider_magicvideo.links"):
        push_links_now(op, {"ti": ti})
    assert "AI/ML API video" in caplog.text and "503" in caplog.text
