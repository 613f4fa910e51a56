"""The example DAGs users copy: they import cleanly, have the documented shape, and run end to end.

The end-to-end runs use ``dag.test()`` (deferrable tasks really defer; their triggers run inline)
against the emulator over a real socket, and the campaign delivers to S3 served by moto.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import av
import pytest

from tests.airflow_compat import dag_test, dagbag_class
from tooling.s3 import aws_connection, moto_s3, s3_client

DAGS = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {"magicvideo_quickstart", "magicvideo_campaign", "magicvideo_campaign_render",
            "magicvideo_text_and_video", "magicvideo_campaign_batch"}


@pytest.fixture(scope="module")
def dagbag():
    return dagbag_class()(dag_folder=str(DAGS))


@pytest.fixture
def fast_polls(monkeypatch):
    # The example DAGs read their poll interval at parse time; dag.test() re-parses the bundle.
    monkeypatch.setenv("MAGICVIDEO_POLL_SECONDS", "1")


def test_every_example_dag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED


def test_quickstart_shape(dagbag):
    dag = dagbag.dags["magicvideo_quickstart"]
    assert dag.schedule is None
    assert dag.task_dict["wait"].deferrable is True
    assert dag.task_dict["submit"].wait_for_completion is False
    assert dag.task_dict["wait"].upstream_task_ids == {"submit"}
    assert dag.task_dict["deliver"].upstream_task_ids == {"submit", "wait"}
    assert dag.task_dict["where_is_it"].upstream_task_ids == {"deliver"}


def test_campaign_shape(dagbag):
    dag = dagbag.dags["magicvideo_campaign"]
    assert dag.schedule == "@daily"
    assert dag.catchup is False
    render, deliver = dag.task_dict["render"], dag.task_dict["deliver"]
    assert render.partial_kwargs["deferrable"] is True
    assert render.partial_kwargs["wait_for_completion"] is True
    # Concurrency (and so credits in flight) is bounded.
    assert render.partial_kwargs["max_active_tis_per_dag"] == 8
    assert deliver.partial_kwargs["max_active_tis_per_dag"] == 8
    assert render.upstream_task_ids == {"read_manifest"}
    assert deliver.upstream_task_ids == {"render", "read_manifest"}
    assert dag.task_dict["write_summary"].upstream_task_ids == {"deliver", "render", "read_manifest"}


def test_campaign_render_shape(dagbag):
    from airflow_provider_magicvideo.operators.render import MagicVideoRenderOperator

    dag = dagbag.dags["magicvideo_campaign_render"]
    render = dag.task_dict["render"]
    assert render.operator_class is MagicVideoRenderOperator
    assert render.partial_kwargs["max_active_tis_per_dag"] == 8
    assert render.partial_kwargs["retries"] == 2
    assert "deferrable" not in render.partial_kwargs  # the operator's default: deferrable
    assert render.upstream_task_ids == {"plan"}
    assert dag.task_dict["summary"].upstream_task_ids == {"render"}


def test_campaign_batch_shape(dagbag):
    from airflow_provider_magicvideo.operators.batch import MagicVideoBatchRenderOperator

    dag = dagbag.dags["magicvideo_campaign_batch"]
    render = dag.task_dict["render_chunk"]
    assert render.operator_class is MagicVideoBatchRenderOperator
    assert set(render.expand_input.value) == {"rows"}  # one mapped task instance per chunk
    assert render.partial_kwargs["retries"] == 2
    assert render.upstream_task_ids == {"chunk"}
    assert dag.task_dict["summary"].upstream_task_ids == {"render_chunk"}


def test_text_and_video_shape(dagbag):
    dag = dagbag.dags["magicvideo_text_and_video"]
    assert dag.task_dict["drone_show"].model == "magic/text-to-video"
    assert dag.task_dict["remix"].model == "magic/video-to-video"
    assert dag.task_dict["remix"].upstream_task_ids == {"drone_show"}


def _probe(path_or_file) -> dict:
    with av.open(path_or_file) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return {
            "codec": video.codec_context.name,
            "size": (video.codec_context.width, video.codec_context.height),
            "audio": [s.codec_context.name for s in container.streams.audio],
            "frames": frames,
        }


def _run(dag_id: str, conf: dict):
    dag = dagbag_class()(dag_folder=str(DAGS / f"{dag_id}.py")).dags[dag_id]
    return dag_test(dag, run_conf=conf)


@pytest.mark.integration
def test_quickstart_renders_and_delivers_a_real_mp4(airflow_db, magicvideo_emulator, magicvideo_conn, fast_polls,
                                                    tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url)
    run = _run("magicvideo_quickstart", {"output_dir": str(tmp_path), "template": "paris eiffel tower"})
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}
    [mp4] = list(tmp_path.glob("*.mp4"))
    probe = _probe(str(mp4))
    assert probe["codec"] == "h264" and probe["size"] == (608, 1080) and probe["audio"] == ["aac"]
    assert probe["frames"] > 0
    assert magicvideo_emulator.stats()["total_posts"] == 1


@pytest.mark.integration
def test_campaign_delivers_every_row_to_s3(airflow_db, magicvideo_emulator, magicvideo_conn, fast_polls):
    magicvideo_conn(magicvideo_emulator.base_url)
    bucket = f"campaigns-{uuid.uuid4().hex[:8]}"  # moto's store is process-wide: keep out of other tests' way
    with moto_s3() as endpoint, aws_connection(endpoint) as conn_id:
        s3_client(endpoint).create_bucket(Bucket=bucket)
        run = _run("magicvideo_campaign", {"destination": f"s3://{bucket}/videos", "dest_conn_id": conn_id})
        assert run.state == "success", {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
        ds = run.logical_date.strftime("%Y-%m-%d") if run.logical_date else run.run_after.strftime("%Y-%m-%d")
        client = s3_client(endpoint)
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
        assert keys == [f"videos/{ds}/{name}" for name in
                        ("SKU-1001.mp4", "SKU-1002.mp4", "SKU-1003.mp4", "index.html", "manifest.json")]
        body = client.get_object(Bucket=bucket, Key=f"videos/{ds}/SKU-1002.mp4")["Body"].read()
        summary = json.loads(client.get_object(Bucket=bucket, Key=f"videos/{ds}/manifest.json")["Body"].read())
        gallery = client.get_object(Bucket=bucket, Key=f"videos/{ds}/index.html")
        assert gallery["ContentType"].startswith("text/html")
        page = gallery["Body"].read().decode()
    local = Path(airflow_db) / "campaign-check.mp4"
    local.write_bytes(body)
    probe = _probe(str(local))
    assert probe["size"] == (608, 1080) and probe["audio"] == ["aac"] and probe["frames"] > 0
    assert [row["key"] for row in summary["rows"]] == ["SKU-1001", "SKU-1002", "SKU-1003"]
    assert {row["status"] for row in summary["rows"]} == {"delivered"}
    assert summary["rows"][1]["uri"] == f"s3://{bucket}/videos/{ds}/SKU-1002.mp4"
    assert summary["credits_used"] == 3 * 1_050_000
    assert 'src="SKU-1002.mp4"' in page and "3</b> videos delivered" in page
    stats = magicvideo_emulator.stats()
    # One paid render per manifest row, each from its own map index.
    assert stats["total_posts"] == 3
    assert sorted(stats["posts_by_client_request_id"].values()) == [1, 1, 1]


@pytest.mark.integration
def test_text_to_video_then_video_to_video(airflow_db, magicvideo_emulator, magicvideo_conn, fast_polls, tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url)
    run = _run("magicvideo_text_and_video", {"output_dir": str(tmp_path), "prompt": "SALE"})
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    produced = sorted(p.name for p in tmp_path.rglob("*.mp4"))
    assert produced == ["drone-show.mp4", "remix.mp4"]
    for mp4 in tmp_path.rglob("*.mp4"):
        assert _probe(str(mp4))["size"] == (608, 1080)
    assert magicvideo_emulator.stats()["total_posts"] == 2


@pytest.mark.integration
def test_campaign_render_delivers_every_row_to_s3_in_one_task_each(airflow_db, magicvideo_emulator, magicvideo_conn,
                                                                   fast_polls):
    magicvideo_conn(magicvideo_emulator.base_url)
    bucket = f"render-{uuid.uuid4().hex[:8]}"
    with moto_s3() as endpoint, aws_connection(endpoint) as conn_id:
        s3_client(endpoint).create_bucket(Bucket=bucket)
        run = _run("magicvideo_campaign_render", {"destination": f"s3://{bucket}/videos", "dest_conn_id": conn_id})
        states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
        assert run.state == "success", states
        ds = run.logical_date.strftime("%Y-%m-%d") if run.logical_date else run.run_after.strftime("%Y-%m-%d")
        keys = sorted(o["Key"] for o in s3_client(endpoint).list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [f"videos/{ds}/{sku}.mp4" for sku in ("SKU-1001", "SKU-1002", "SKU-1003")]
    assert sorted(i for task_id, i in states if task_id == "render") == [0, 1, 2]
    stats = magicvideo_emulator.stats()
    assert stats["total_posts"] == 3
    assert sorted(stats["posts_by_client_request_id"].values()) == [1, 1, 1]


@pytest.mark.integration
def test_campaign_batch_renders_each_chunk_in_one_task_with_a_manifest(airflow_db, magicvideo_emulator,
                                                                       magicvideo_conn, fast_polls, tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url)
    run = _run("magicvideo_campaign_batch", {"destination": str(tmp_path), "dest_conn_id": "", "chunk_size": 2})
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert sorted(i for task_id, i in states if task_id == "render_chunk") == [0, 1]  # 3 rows in chunks of 2
    ds = run.logical_date.strftime("%Y-%m-%d") if run.logical_date else run.run_after.strftime("%Y-%m-%d")
    folder = tmp_path / ds
    assert sorted(p.name for p in folder.iterdir()) == ["SKU-1001.mp4", "SKU-1002.mp4", "SKU-1003.mp4",
                                                       "index-0.html", "index-1.html",  # a page per chunk
                                                       "manifest-0.json", "manifest-1.json"]
    manifests = [json.loads((folder / f"manifest-{i}.json").read_text()) for i in (0, 1)]
    assert [[r["key"] for r in m["rows"]] for m in manifests] == [["SKU-1001", "SKU-1002"], ["SKU-1003"]]
    assert {r["status"] for m in manifests for r in m["rows"]} == {"delivered"}
    assert manifests[1]["task"] == "magicvideo_campaign_batch.render_chunk[1]"
    assert manifests[0]["rows"][0]["template"] == "Times Square Billboard"
    stats = magicvideo_emulator.stats()
    assert stats["total_posts"] == 3
    assert sorted(stats["posts_by_client_request_id"].values()) == [1, 1, 1]


@pytest.mark.integration
def test_campaign_lists_a_failed_render_with_the_apis_reason_and_fails_the_run(
        airflow_db, magicvideo_emulator, magicvideo_conn, fast_polls, api_key, tmp_path):
    """One row's image cannot be fetched by the API (nothing listens on port 9): its generation ends in error.
    The summary still runs, writes the manifest and the gallery with that row and the API's reason, then fails
    the run; the other rows are rendered but wait for the fix (listed as pending)."""
    magicvideo_conn(magicvideo_emulator.base_url)
    products = DAGS / "data" / "products"
    manifest = tmp_path / "spring.csv"
    manifest.write_text("sku,image,template\n"
                        f"SKU-1001,{products / 'sku-1001.png'},Art Gallery\n"
                        "SKU-BAD,http://127.0.0.1:9/missing.png,Phone Social\n"
                        f"SKU-1003,{products / 'sku-1003.png'},Art Gallery\n")
    out = tmp_path / "out"
    run = _run("magicvideo_campaign", {"manifest": str(manifest), "destination": str(out), "dest_conn_id": ""})
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert run.state == "failed", states
    assert states[("render", 1)] == "failed" and states[("render", 0)] == states[("render", 2)] == "success"
    assert states[("write_summary", -1)] == "failed", states  # it ran, wrote, then made the failure visible
    [folder] = out.iterdir()
    summary = json.loads((folder / "manifest.json").read_text())
    rows = {row["key"]: row for row in summary["rows"]}
    assert [row["status"] for row in summary["rows"]] == ["pending", "failed", "pending"]
    bad = rows["SKU-BAD"]
    assert bad["generation_id"] and bad["credits_used"] == 0 and bad["uri"] is None
    assert bad["error"].startswith("MediaDownloadError: image_url: could not download 127.0.0.1:9"), bad
    assert summary["credits_used"] == 2 * 1_050_000  # an error is not billed
    page = (folder / "index.html").read_text()
    assert "<h2>SKU-BAD</h2>" in page and "MediaDownloadError: image_url: could not download" in page
    assert "1</b> failed" in page and "2</b> pending" in page and "<video" not in page
    assert api_key not in page and api_key not in (folder / "manifest.json").read_text()
    assert magicvideo_emulator.stats()["total_posts"] == 3  # the failed render was not retried


def test_campaign_folder_date_of_a_run_triggered_by_hand():
    """Airflow 3 gives a run triggered from the UI or REST no logical date, hence no ``ds``: the campaign's
    folder is then named after the date the run was triggered for (it used to fail with KeyError: 'ds')."""
    import importlib.util
    from datetime import UTC, datetime
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("campaign_dag_for_test", DAGS / "magicvideo_campaign.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = SimpleNamespace(run_after=datetime(2026, 12, 3, 23, 59, tzinfo=UTC))
    assert module.run_date({"dag_run": run}) == "2026-12-03"
    assert module.run_date({"ds": "2026-01-02", "dag_run": run}) == "2026-01-02"
