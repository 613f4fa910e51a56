"""Tests of ``MagicVideoDeliverOperator`` and ``MagicVideoDeliveredLink``."""

from __future__ import annotations

import hashlib
import io
import json
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, Asset, ObjectStoragePath

from airflow_provider_magicvideo.exceptions import DeliveryError
from airflow_provider_magicvideo.generation import resolve_generation_id
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliveredLink, MagicVideoDeliverOperator
from tests.airflow_compat import dag_test
from tests.s3_server import s3_endpoint  # noqa: F401  (fixture)
from tooling.s3 import s3_client

BASE = "https://api.magic.test/v2"
CDN = "https://cdn.magic.test/files/"
GEN = "gen-op-1"
VIDEO = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 400
RESULT_KEYS = {"uri", "size", "sha256", "content_type", "generation_id", "skipped"}


def context(**ti: Any) -> dict[str, Any]:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    xcoms: dict[str, Any] = {}
    fields = {"dag_id": "campaign", "task_id": "deliver", "run_id": "manual__2026-01-02", "map_index": -1,
              "xcoms": xcoms, "xcom_push": lambda key, value: xcoms.__setitem__(key, value), **ti}
    return {"ti": SimpleNamespace(**fields), "outlet_events": OutletEventAccessors()}


@pytest.fixture(autouse=True)
def _public_test_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """``*.magic.test`` (served by requests-mock) resolves to a public documentation address, not DNS."""
    import socket

    from airflow_provider_magicvideo.hooks import video, video_url

    def resolve(host: str, port: int, **kwargs: Any) -> Any:
        if host.endswith(".magic.test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]
        return socket.getaddrinfo(host, port, **kwargs)

    def check(url: str, **kwargs: Any) -> str:
        return video_url.check_video_url(url, resolve=resolve, **kwargs)

    monkeypatch.setattr(video, "check_video_url", check)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator calls deliver_generation with the default (real) sleep: make it a no-op here."""
    from airflow_provider_magicvideo.operators import deliver as module

    real = module.deliver_generation
    monkeypatch.setattr(module, "deliver_generation",
                        lambda *args, **kwargs: real(*args, **{"sleep": lambda seconds: None, **kwargs}))


@pytest.fixture
def fake_api(requests_mock, magicvideo_conn):
    """requests-mock API: ``state["status"]`` is served; ``state["file"]`` is the CDN answer."""
    magicvideo_conn(BASE, max_retries=0)
    state: dict[str, Any] = {"status": {"status": "completed"}, "file": {"content": VIDEO}}

    def status(request, ctx):
        body = {"id": GEN, **state["status"]}
        if body["status"] == "completed":
            body["video"] = {"url": f"{CDN}{GEN}.mp4?X-Amz-Signature=s3cr3t"}
        return body

    requests_mock.get(f"{BASE}/video/generations", json=status)
    requests_mock.get(f"{CDN}{GEN}.mp4", [state["file"]])
    state["mock"] = requests_mock
    return state


# ============================================================================================ execute
def test_execute_returns_and_publishes_the_result(fake_api, tmp_path):
    asset = Asset(f"file://{tmp_path}/v.mp4")
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=GEN, destination=str(tmp_path / "v.mp4"),
                                   outlets=[asset])
    ctx = context()
    result = op.execute(ctx)

    digest = hashlib.sha256(VIDEO).hexdigest()
    assert result == {"uri": f"file://{tmp_path}/v.mp4", "size": len(VIDEO), "sha256": digest,
                      "content_type": "video/mp4", "generation_id": GEN, "skipped": False}
    assert (tmp_path / "v.mp4").read_bytes() == VIDEO
    assert ctx["outlet_events"][asset].extra == result
    assert ctx["ti"].xcoms["generation_id"] == GEN  # the extra link's redirect finds it there
    # written when the try starts too (Airflow writes links only when it ends); the s3-only link stays unwritten
    assert ctx["ti"].xcoms["_link_MagicVideoLink"].endswith("/tasks/deliver/video?map_index=-1&conn_id=magicvideo_default")
    assert "_link_MagicVideoDeliveredLink" not in ctx["ti"].xcoms
    assert op.delivered_uri == result["uri"]  # the "Delivered video" link reads it when the worker finalizes


def test_hook_gets_a_client_request_id_from_the_task_instance(fake_api, tmp_path):
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=GEN, destination=str(tmp_path / "v.mp4"))
    hook = op.get_hook(context(map_index=3))
    assert hook.client_request_id == op.get_hook(context(map_index=3)).client_request_id  # stable per task
    assert hook.client_request_id != op.get_hook(context(map_index=4)).client_request_id
    op.execute(context(map_index=3))
    sent = [r.headers.get("X-Client-Request-Id") for r in fake_api["mock"].request_history
            if r.url.startswith(BASE)]
    assert sent == [hook.client_request_id]


@pytest.mark.parametrize("value", [
    GEN,
    f"  {GEN} ",
    {"generation_id": GEN, "status": "completed", "video_url": "https://x", "url_expires_at": None,
     "credits_used": 1, "model": "magic/image-to-video", "template": "Thailand Street"},
    f'{{"generation_id": "{GEN}", "status": "completed"}}',
    f"{{'generation_id': '{GEN}', 'status': 'completed'}}",
])
def test_generation_id_forms(value):
    assert resolve_generation_id(value) == GEN


@pytest.mark.parametrize("value", [None, "", {"status": "completed"}, 42])
def test_bad_generation_id_fails_without_retry(value, fake_api, tmp_path):
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=value, destination=str(tmp_path / "v.mp4"))
    with pytest.raises(AirflowFailException, match="generation_id"):
        op.execute(context())
    assert fake_api["mock"].call_count == 0


def test_failed_render_fails_the_task_for_good(fake_api, tmp_path):
    fake_api["status"] = {"status": "error", "error": {"name": "RenderError", "message": "bad frame"}}
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=GEN, destination=str(tmp_path / "v.mp4"))
    with pytest.raises(AirflowFailException, match="RenderError: bad frame"):
        op.execute(context())


def test_pending_render_is_retried_by_airflow(fake_api, tmp_path):
    fake_api["status"] = {"status": "generating"}
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=GEN, destination=str(tmp_path / "v.mp4"))
    with pytest.raises(DeliveryError) as info:
        op.execute(context())
    assert not isinstance(info.value, AirflowFailException)


def test_bad_destination_fails_the_task_for_good(fake_api, tmp_path):
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=GEN, destination=f"file://{tmp_path}/")
    with pytest.raises(AirflowFailException, match="folder"):
        op.execute(context())
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=GEN, destination=str(tmp_path))
    with pytest.raises(AirflowFailException, match="folder"):
        op.execute(context())


def test_transient_download_failure_is_a_plain_error(fake_api, tmp_path):
    fake_api["mock"].get(f"{CDN}{GEN}.mp4", status_code=403, text="<Error><Code>AccessDenied</Code></Error>")
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=GEN, destination=str(tmp_path / "v.mp4"),
                                   max_attempts=2)
    with pytest.raises(DeliveryError, match="after 2 attempt") as info:
        op.execute(context())
    assert not isinstance(info.value, AirflowFailException)
    assert list(tmp_path.iterdir()) == []


def test_invalid_arguments_are_rejected_at_parse_time():
    with pytest.raises(ValueError, match="overwrite"):
        MagicVideoDeliverOperator(task_id="d", generation_id=GEN, destination="/tmp/x.mp4", overwrite="maybe")
    with pytest.raises(ValueError):
        MagicVideoDeliverOperator(task_id="d", generation_id=GEN, destination="/tmp/x.mp4", max_attempts=0)


def test_template_fields():
    assert MagicVideoDeliverOperator.template_fields == ("generation_id", "destination", "dest_conn_id")


# =============================================================================================== link
def test_links_are_the_render_redirect_and_the_delivered_object():
    # More in tests/test_links.py; here: which links the operator has and what execute leaves for them.
    op = MagicVideoDeliverOperator(task_id="d", generation_id=GEN, destination="/tmp/x.mp4")
    assert [link.name for link in op.operator_extra_links] == ["AI/ML API video", "Delivered video"]
    assert op.delivered_uri is None
    assert MagicVideoDeliveredLink().get_link(op, ti_key="KEY") == ""
    op.delivered_uri = "s3://campaigns/2026-01-02/sku.mp4"
    assert MagicVideoDeliveredLink().get_link(op, ti_key="KEY").startswith("https://s3.console.aws.amazon.com/")


# ======================================================================================== emulator
def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (160, 120), (200, 60, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def render(magicvideo_emulator, magicvideo_conn) -> dict[str, Any]:
    """A completed emulator render, as the dict the submit operator / sensor pushes."""
    magicvideo_conn(magicvideo_emulator.base_url)
    hook = MagicVideoHook()
    generation = hook.wait_for_generation(hook.submit(image=png_bytes()).id, poll_interval=1, timeout=60)
    hook.close()
    return {"generation_id": generation.id, "status": "completed", "video_url": generation.video_url,
            "url_expires_at": None, "credits_used": generation.credits_used, "model": "magic/image-to-video",
            "template": "Thailand Street"}


@pytest.mark.integration
def test_execute_against_the_emulator_to_s3(render, s3_endpoint):  # noqa: F811
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="op-bucket")
    asset = Asset("s3://op-bucket/out/clip.mp4")
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=render,
                                   destination="s3://op-bucket/out/clip.mp4", dest_conn_id="aws_test",
                                   outlets=[asset])
    ctx = context()
    result = op.execute(ctx)
    body = client.get_object(Bucket="op-bucket", Key="out/clip.mp4")["Body"].read()
    assert body[4:8] == b"ftyp"
    assert result["sha256"] == hashlib.sha256(body).hexdigest() and result["size"] == len(body)
    assert result["uri"] == "s3://op-bucket/out/clip.mp4" and result["generation_id"] == render["generation_id"]
    assert ctx["outlet_events"][asset].extra == result
    assert MagicVideoDeliveredLink().get_link(op, ti_key="KEY") == (
        "https://s3.console.aws.amazon.com/s3/object/op-bucket?prefix=out%2Fclip.mp4")
    assert op.execute(context())["skipped"] is True


@pytest.mark.integration
def test_execute_accepts_an_objectstoragepath(render, tmp_path):
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=render["generation_id"],
                                   destination=ObjectStoragePath(f"file://{tmp_path}/clip.mp4"))
    result = op.execute(context())
    assert set(result) == RESULT_KEYS
    assert (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"


# ========================================================================================= dag.test
DAG_FILE = '''
import pendulum
from airflow.sdk import DAG, Asset
from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator

with DAG("deliver_test_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         params={{"sku": "sku-42", "generation_id": ""}}) as dag:
    MagicVideoDeliverOperator(
        task_id="deliver",
        generation_id="{{{{ params.generation_id }}}}",
        destination="file://{out}/{{{{ ds }}}}/{{{{ params.sku }}}}.mp4",
        outlets=[Asset("file://{out}/latest.mp4")],
    )
'''


@pytest.mark.integration
def test_dag_test_renders_templates_and_delivers(render, airflow_db, tmp_path, monkeypatch):
    import importlib.util

    import pendulum

    dags = tmp_path / "dags"
    dags.mkdir()
    out = tmp_path / "out"
    (dags / "deliver_test_dag.py").write_text(textwrap.dedent(DAG_FILE.format(out=out)))
    bundles = [{"name": "deliver-test-dags", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(dags), "refresh_interval": 0}}]
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    spec = importlib.util.spec_from_file_location("deliver_test_dag", dags / "deliver_test_dag.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag

    run = dag_test(dag, logical_date=pendulum.datetime(2026, 1, 2, tz="UTC"),
                    run_conf={"generation_id": render["generation_id"]})
    assert str(run.state) in ("success", "DagRunState.SUCCESS"), run.state
    delivered = out / "2026-01-02" / "sku-42.mp4"
    assert delivered.read_bytes()[4:8] == b"ftyp"
    ti = run.get_task_instance("deliver")
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = {row.key: row.value for row in session.query(XComModel).filter_by(
            dag_id=ti.dag_id, run_id=ti.run_id, task_id="deliver")}
    value = XComModel.deserialize_value(SimpleNamespace(value=rows["return_value"]))
    assert value["uri"] == f"file://{delivered}" and value["skipped"] is False
    link = XComModel.deserialize_value(SimpleNamespace(value=rows["_link_MagicVideoDeliveredLink"]))
    assert link == ""  # file:// has no page the UI would open: hidden; "AI/ML API video" opens the render
    assert XComModel.deserialize_value(SimpleNamespace(value=rows["generation_id"])) == render["generation_id"]
    assert XComModel.deserialize_value(SimpleNamespace(value=rows["_link_MagicVideoLink"])).endswith(
        "/tasks/deliver/video?map_index=-1&conn_id=magicvideo_default")
