"""OpenLineage facets of the submit and deliver operators (:mod:`airflow_provider_magicvideo.lineage`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("airflow.providers.openlineage", reason="the OpenLineage provider: the openlineage extra")

from airflow.providers.common.compat.openlineage.facet import Dataset
from airflow.providers.common.compat.sdk import ObjectStoragePath
from openlineage.client.serde import Serde

from airflow_provider_magicvideo.generation import Generation, GenerationStatus
from airflow_provider_magicvideo.lineage import MagicVideoRunFacet, dataset_of
from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from tests.conftest import REPO_ROOT, TEST_API_KEY
from tests.hooks.support import BASE_URL, GENERATIONS_URL, MP4_BYTES, VIDEO_URL, payload

MODEL = "magic/image-to-video"


# ============================================================================================ datasets
@pytest.mark.parametrize(("value", "expected"), [
    ("s3://inputs/2026/cat.png", ("s3://inputs", "2026/cat.png")),
    ("  s3a://inputs/cat.png ", ("s3://inputs", "cat.png")),  # fsspec aliases: one namespace per store
    ("gcs://bucket/a/b.mp4", ("gs://bucket", "a/b.mp4")),
    ("file:///data/in/cat.png", ("file", "/data/in/cat.png")),
    # a connection id (or credentials) in the authority and a signature in the query identify no dataset
    ("s3://aws_default@inputs/cat.png?X-Amz-Signature=abc", ("s3://inputs", "cat.png")),
    (ObjectStoragePath("s3://inputs/cat.png", conn_id="aws_default"), ("s3://inputs", "cat.png")),
    (ObjectStoragePath("file:///data/cat.png"), ("file", "/data/cat.png")),
    (Path("/data/cat.png"), ("file", "/data/cat.png")),
])
def test_a_storage_uri_or_path_names_a_dataset(value: Any, expected: tuple[str, str]):
    assert dataset_of(value) == Dataset(namespace=expected[0], name=expected[1])


@pytest.mark.parametrize("value", [
    VIDEO_URL,  # presigned: never a dataset, never in an event
    "http://example.com/cat.png",
    "data:image/png;base64,iVBORw0KGgo=",
    "/9j/4AAQSkZJRgABAQ",  # JPEG base64 looks like a path: bare strings are not guessed at
    b"\x89PNG\r\n\x1a\n",
    None,
])
def test_anything_else_names_no_dataset(value: Any):
    assert dataset_of(value) is None


# ============================================================================================ submit
class FakeHook:
    def submit(self, *, on_created: Any = None, **kwargs: Any) -> Generation:
        on_created("gen-1", 70)
        return Generation(id="gen-1", status=GenerationStatus.QUEUED, raw_status="queued", credits_used=70)

    def wait_for_generation(self, generation_id: str, **kwargs: Any) -> Generation:
        return Generation(id=generation_id, status=GenerationStatus.COMPLETED, raw_status="completed",
                          video_url=VIDEO_URL)


def context() -> dict[str, Any]:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    xcoms: dict[str, Any] = {}
    ti = SimpleNamespace(dag_id="campaign", task_id="render", run_id="manual__2026", map_index=-1, try_number=1,
                         xcoms=xcoms, xcom_push=lambda key, value: xcoms.__setitem__(key, value))
    return {"ti": ti, "task_state_store": None, "dag": SimpleNamespace(task_ids=["render"]),
            "outlet_events": OutletEventAccessors()}


def submitted(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> MagicVideoSubmitOperator:
    op = MagicVideoSubmitOperator(task_id="render", **kwargs)
    monkeypatch.setattr(op, "get_hook", lambda ctx: FakeHook())
    op.execute(context())
    return op


def test_submit_reports_its_storage_input_and_the_generation(monkeypatch):
    op = submitted(monkeypatch, image="s3://inputs/2026/cat.png", wait_for_completion=True)
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)

    assert lineage.inputs == [Dataset(namespace="s3://inputs", name="2026/cat.png")]
    assert lineage.outputs == []
    assert lineage.run_facets == {"magicvideo": MagicVideoRunFacet(
        model=MODEL, template="Thailand Street", generation_id="gen-1", credits_used=70)}
    sent = Serde.to_json(lineage.run_facets["magicvideo"])
    assert "cdn.magic.test" not in sent and "Signature" not in sent and TEST_API_KEY not in sent


def test_submit_without_waiting_still_names_the_generation(monkeypatch):
    op = submitted(monkeypatch, image="https://example.com/cat.png")
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)

    assert lineage.inputs == []  # an http(s) input is fetched by the API: no dataset of ours
    assert lineage.run_facets["magicvideo"].generation_id == "gen-1"
    assert lineage.run_facets["magicvideo"].credits_used == 70


def test_the_openlineage_provider_uses_the_operators_facets(monkeypatch):
    """Through the provider's own extractor manager, as its listener calls it when the task succeeds."""
    from airflow.providers.openlineage.extractors.manager import ExtractorManager
    from airflow.utils.state import TaskInstanceState

    op = submitted(monkeypatch, video="file:///data/in/clip.mp4", model="magic/video-to-video")
    lineage = ExtractorManager().extract_metadata(
        dagrun=SimpleNamespace(run_id="manual__2026"), task=op, task_instance_state=TaskInstanceState.SUCCESS,
        task_instance=SimpleNamespace(task=op, map_index=-1))
    assert lineage.inputs == [Dataset(namespace="file", name="/data/in/clip.mp4")]
    assert lineage.run_facets["magicvideo"].model == "magic/video-to-video"


# ============================================================================================ deliver
@pytest.fixture
def api(requests_mock: Any, magicvideo_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from airflow_provider_magicvideo.hooks import video, video_url

    def resolve(host: str, port: int, **kwargs: Any) -> Any:  # *.magic.test: a public address, not DNS
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(video, "check_video_url", lambda url, **kw: video_url.check_video_url(url, resolve=resolve, **kw))
    magicvideo_conn(BASE_URL, max_retries=0)
    requests_mock.get(GENERATIONS_URL, json=payload("completed"))
    requests_mock.get(VIDEO_URL.split("?")[0], content=MP4_BYTES, headers={"Content-Type": "video/mp4"})


def test_deliver_reports_the_delivered_object_and_what_it_was_handed(api, tmp_path):
    handed = {"generation_id": "gen-1", "status": "completed", "video_url": VIDEO_URL, "url_expires_at": None,
              "credits_used": 70, "model": MODEL, "template": "Thailand Street"}
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=handed, destination=str(tmp_path / "v.mp4"))
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)

    assert lineage.inputs == []
    assert lineage.outputs == [Dataset(namespace="file", name=str(tmp_path / "v.mp4"))]
    assert lineage.run_facets == {"magicvideo": MagicVideoRunFacet(
        model=MODEL, template="Thailand Street", generation_id="gen-1", credits_used=70)}
    assert "Signature" not in Serde.to_json(lineage.run_facets["magicvideo"])


def test_deliver_of_a_bare_id_names_only_the_generation(api, tmp_path):
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id="gen-1", destination=f"file://{tmp_path}/v.mp4")
    op.execute(context())
    facet = op.get_openlineage_facets_on_complete(task_instance=None).run_facets["magicvideo"]
    assert facet == MagicVideoRunFacet(generation_id="gen-1")


def test_render_reports_its_input_the_delivered_object_and_the_generation(api, monkeypatch, tmp_path):
    """One task from input to file: the lineage of both halves, not only the submit's."""
    from airflow_provider_magicvideo.operators.render import MagicVideoRenderOperator

    op = MagicVideoRenderOperator(task_id="render", image="s3://inputs/2026/cat.png", deferrable=False,
                                  destination=str(tmp_path / "v.mp4"))
    monkeypatch.setattr(op, "get_hook", lambda ctx, real=op.get_hook: _submits_then_real(real(ctx)))
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)

    assert lineage.inputs == [Dataset(namespace="s3://inputs", name="2026/cat.png")]
    assert lineage.outputs == [Dataset(namespace="file", name=str(tmp_path / "v.mp4"))]
    assert lineage.run_facets["magicvideo"].generation_id == "gen-1"


def _submits_then_real(hook: Any) -> Any:
    """The real hook (its download path against ``api``), with the fake hook's submit and wait."""
    fake = FakeHook()
    hook.submit, hook.wait_for_generation = fake.submit, fake.wait_for_generation
    return hook


# ============================================================================================ optional
def test_the_provider_works_without_the_openlineage_provider():
    """Operators, sensor and delivery import without it; the lineage module is loaded only when asked."""
    code = (
        "import sys\n"
        "for name in ('openlineage', 'airflow.providers.openlineage.extractors'):\n"
        "    sys.modules[name] = None  # what an uninstalled package looks like to import\n"
        "import airflow_provider_magicvideo.operators.magicvideo, airflow_provider_magicvideo.operators.deliver\n"
        "import airflow_provider_magicvideo.sensors.magicvideo, airflow_provider_magicvideo.delivery\n"
        "assert 'airflow_provider_magicvideo.lineage' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
