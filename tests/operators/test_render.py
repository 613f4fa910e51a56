"""MagicVideoRenderOperator: one task from the input image to the delivered MP4, against the emulator.

``execute`` / ``execute_complete`` are driven directly (a retry is ``execute`` again with the same durable
``task_state_store``); the mapped campaign runs through ``dag.test()``. Billing after failed deliveries:
``tests/security/test_billing_once.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, Asset, TaskDeferred

from airflow_provider_magicvideo import get_provider_info
from airflow_provider_magicvideo.emulator.testing import data_uri, png_bytes
from airflow_provider_magicvideo.exceptions import InvalidInputError
from airflow_provider_magicvideo.generation import RESULT_KEYS
from airflow_provider_magicvideo.links import MagicVideoDeliveredLink, MagicVideoLink
from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from airflow_provider_magicvideo.operators.render import MagicVideoRenderOperator
from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger
from tests.airflow_compat import dag_test
from tests.dag_files.operator_support import Spy, all_xcoms, load_dags, tis, xcom
from tests.task_support import Store, first_event

IMAGE = data_uri(png_bytes((30, 90, 200), (64, 48)))
DELIVERY_KEYS = ("uri", "size", "sha256", "content_type", "skipped")


def context(store: Store | None, try_number: int = 1, map_index: int = -1) -> dict[str, Any]:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    xcoms: dict[str, Any] = {}
    ti = SimpleNamespace(dag_id="render_dag", task_id="render", run_id="manual__2026", map_index=map_index,
                         try_number=try_number, xcoms=xcoms, xcom_push=lambda key, value: xcoms.__setitem__(key, value))
    return {"ti": ti, "task_state_store": store, "dag": SimpleNamespace(task_ids=["render"]),
            "outlet_events": OutletEventAccessors()}


def render_operator(destination: Any, **kwargs: Any) -> MagicVideoRenderOperator:
    kwargs = {"poll_interval": 1, "timeout": 60, **kwargs}
    return MagicVideoRenderOperator(task_id="render", image=IMAGE, template="Art Gallery", destination=destination,
                                    **kwargs)


# ============================================================================== declared, checked at parse time
def test_it_combines_the_submit_and_the_deliver_operator():
    assert issubclass(MagicVideoRenderOperator, MagicVideoSubmitOperator)
    assert MagicVideoRenderOperator.template_fields == (*MagicVideoSubmitOperator.template_fields,
                                                        "destination", "dest_conn_id")
    assert set(MagicVideoDeliverOperator.template_fields) - {"generation_id"} <= set(
        MagicVideoRenderOperator.template_fields)
    assert [type(link) for link in MagicVideoRenderOperator.operator_extra_links] == [MagicVideoLink,
                                                                                     MagicVideoDeliveredLink]
    assert MagicVideoRenderOperator.state_key == MagicVideoSubmitOperator.state_key  # retries find the record
    op = render_operator("/data/out.mp4")
    assert op.wait_for_completion is True
    assert op.deferrable is True  # by default: no worker slot while the video renders
    assert render_operator("/data/out.mp4", deferrable=False).deferrable is False
    assert op.delivered_uri is None


def test_it_is_registered_with_the_provider():
    modules = [m for entry in get_provider_info()["operators"] for m in entry["python-modules"]]
    assert "airflow_provider_magicvideo.operators.render" in modules


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"wait_for_completion": False}, "always waits"),
    ({"overwrite": "maybe"}, "overwrite"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"poll_interval": 0.1}, "poll_interval"),
    ({"credit_budget": -1}, "credit_budget"),
])
def test_bad_arguments_are_refused_when_the_dag_is_parsed(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        render_operator("/data/out.mp4", **kwargs)


# ============================================================================================== emulator
@pytest.mark.integration
def test_blocking_render_is_delivered_in_the_same_task(magicvideo_emulator, magicvideo_conn, api_key, tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url)
    asset = Asset("magicvideo://renders/render-test")
    op = render_operator(str(tmp_path / "out" / "clip.mp4"), deferrable=False, outlets=[asset])
    ctx = context(Store())
    result = op.execute(ctx)

    body = (tmp_path / "out" / "clip.mp4").read_bytes()
    assert body[4:8] == b"ftyp"
    assert tuple(result) == (*RESULT_KEYS, *DELIVERY_KEYS)
    assert result["status"] == "completed"
    assert result["model"] == "magic/image-to-video" and result["template"] == "Art Gallery"
    assert result["credits_used"] == 1_050_000
    assert result["uri"] == f"file://{tmp_path}/out/clip.mp4"
    assert result["size"] == len(body) and result["sha256"] == hashlib.sha256(body).hexdigest()
    assert result["skipped"] is False
    xcoms = ctx["ti"].xcoms
    assert xcoms["generation_id"] == result["generation_id"]
    assert xcoms["video_url"] == result["video_url"]
    assert xcoms["_link_MagicVideoLink"].endswith("/tasks/render/video?map_index=-1&conn_id=magicvideo_default")
    assert op.delivered_uri == result["uri"]  # the "Delivered video" link reads it when the try ends
    extra = ctx["outlet_events"][asset].extra
    assert {k: extra[k] for k in ("generation_id", "template", "credits_used", "uri", "sha256", "size")} == {
        k: result[k] for k in ("generation_id", "template", "credits_used", "uri", "sha256", "size")}
    assert api_key not in json.dumps([result, xcoms], default=str)
    assert magicvideo_emulator.stats()["total_posts"] == 1


@pytest.mark.integration
@pytest.mark.parametrize("destination", ["{tmp}/", "{tmp}/out/.."])
def test_a_destination_that_names_no_file_is_refused_before_any_post(magicvideo_emulator, magicvideo_conn,
                                                                     tmp_path, destination):
    magicvideo_conn(magicvideo_emulator.base_url)
    op = render_operator(destination.format(tmp=tmp_path), deferrable=False)
    with pytest.raises(AirflowFailException, match="destination"):
        op.execute(context(Store()))
    assert magicvideo_emulator.stats()["total_posts"] == 0


@pytest.mark.integration
def test_deferred_render_resumes_and_delivers(magicvideo_emulator, magicvideo_conn, api_key, tmp_path,
                                              no_shared_session_leak):
    magicvideo_conn(magicvideo_emulator.base_url)
    op = render_operator(str(tmp_path / "clip.mp4"))
    store = Store()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(store))
    assert not (tmp_path / "clip.mp4").exists()  # nothing delivered while the video renders
    trigger = deferred.value.trigger
    _classpath, trigger_kwargs = trigger.serialize()
    assert api_key not in json.dumps(trigger_kwargs) and "destination" not in trigger_kwargs
    event = asyncio.run(first_event(MagicVideoTrigger(**trigger_kwargs)))

    ctx = context(store)
    result = getattr(op, deferred.value.method_name)(ctx, event=event, **(deferred.value.kwargs or {}))
    body = (tmp_path / "clip.mp4").read_bytes()
    assert result["generation_id"] == store[op.state_key]["generation_id"] == event["generation_id"]
    assert result["sha256"] == hashlib.sha256(body).hexdigest()
    assert result["credits_used"] == 1_050_000 and result["template"] == "Art Gallery"
    assert ctx["ti"].xcoms["video_url"] == result["video_url"]
    assert magicvideo_emulator.stats()["total_posts"] == 1


# ============================================================================================== dag.test
@pytest.mark.integration
def test_mapped_campaign_renders_and_delivers_each_row_once(airflow_db, magicvideo_emulator, magicvideo_conn,
                                                            api_key, tmp_path, monkeypatch):
    magicvideo_conn(magicvideo_emulator.base_url)
    dags = load_dags()
    resumed = Spy(monkeypatch, MagicVideoRenderOperator, "execute_complete")
    run = dag_test(dags.render_mapped_dag, run_conf={"out_dir": str(tmp_path)})
    instances = tis(run)
    assert run.state == "success", {k: ti.state for k, ti in instances.items()}
    assert sorted(i for task_id, i in instances if task_id == "render") == [0, 1, 2]
    assert resumed.task_ids() == ["render"] * 3  # each waited in the triggerer

    ds = (run.logical_date or run.run_after).strftime("%Y-%m-%d")
    results = [xcom(run, "render", map_index=i) for i in range(3)]
    for i, result in enumerate(results):
        mp4 = tmp_path / ds / f"sku-{i}.mp4"
        assert result["uri"] == f"file://{mp4}", i
        assert result["sha256"] == hashlib.sha256(mp4.read_bytes()).hexdigest()
        assert result["template"] == dags.CAMPAIGN_TEMPLATES[i]
        assert result["credits_used"] == 1_050_000
        assert xcom(run, "render", "generation_id", map_index=i) == result["generation_id"]
        assert xcom(run, "render", MagicVideoLink().xcom_key, map_index=i).endswith(
            f"/tasks/render/video?map_index={i}&conn_id=magicvideo_default")
        assert xcom(run, "render", MagicVideoDeliveredLink().xcom_key, map_index=i) == ""  # file://: hidden
    assert len({r["generation_id"] for r in results}) == 3
    stats = magicvideo_emulator.stats()
    assert stats["total_posts"] == 3
    assert sorted(stats["posts_by_client_request_id"].values()) == [1, 1, 1]
    assert api_key not in json.dumps(all_xcoms(run), default=str)
