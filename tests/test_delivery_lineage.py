"""Hook-level lineage of a delivery: Airflow's hook lineage collector sees the delivered object as an output.

ObjectStoragePath reports to the collector from ``open()`` (its file's writes), ``copy()`` and ``move()``; the
delivery writes in place through ``open()`` (S3) or moves a temporary file with ``move()`` (elsewhere). Airflow
installs a real collector only when a hook-lineage reader plugin (e.g. OpenLineage's) is enabled, so the tests
put one where ObjectStoragePath looks it up.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_magicvideo.delivery import deliver_generation
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from tests.hooks.support import BASE_URL, GENERATIONS_URL, MP4_BYTES, VIDEO_URL, payload
from tests.s3_server import s3_endpoint  # noqa: F401  (fixture)
from tooling.s3 import s3_client


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A live HookLineageCollector returned by ``get_hook_lineage_collector`` (Airflow 3.0-3.3 locations)."""
    live = None
    for name in ("airflow.sdk.lineage", "airflow.lineage.hook"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if "get_hook_lineage_collector" not in vars(module):  # a deprecated re-export (module __getattr__)
            continue
        live = live or module.HookLineageCollector()
        monkeypatch.setattr(module, "get_hook_lineage_collector", lambda live=live: live)
    assert live is not None
    return live


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


@pytest.fixture
def hook(requests_mock: Any, magicvideo_conn: Any) -> Any:
    magicvideo_conn(BASE_URL, max_retries=0)
    requests_mock.get(GENERATIONS_URL, json=payload("completed"))
    requests_mock.get(VIDEO_URL.split("?")[0], content=MP4_BYTES, headers={"Content-Type": "video/mp4"})
    h = MagicVideoHook()
    yield h
    h.close()


def uris(infos: list[Any]) -> list[str]:
    return [info.asset.uri for info in infos]


def test_a_local_delivery_reports_the_delivered_file_as_its_one_output(collector, hook, tmp_path):
    target = tmp_path / "out" / "v.mp4"
    deliver_generation(hook, "gen-1", target, sleep=lambda s: None)

    lineage = collector.collected_assets
    assert uris(lineage.outputs) == [f"file://{target}"]  # not the temporary .part- file it was written as
    assert f"file://{target}" not in uris(lineage.inputs)
    assert target.read_bytes() == MP4_BYTES


def test_a_delivery_that_writes_nothing_reports_nothing(collector, hook, tmp_path):
    target = tmp_path / "v.mp4"
    target.write_bytes(MP4_BYTES)
    result = deliver_generation(hook, "gen-1", target, sleep=lambda s: None)

    assert result.skipped
    lineage = collector.collected_assets
    assert lineage.outputs == [] and lineage.inputs == []  # checking what is there is no input of the task


@pytest.mark.integration
def test_an_s3_delivery_reports_the_object_it_committed(collector, hook, s3_endpoint):  # noqa: F811
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="lineage")
    destination = ObjectStoragePath("s3://lineage/2026/sku-1.mp4", conn_id="aws_test")
    deliver_generation(hook, "gen-1", destination, sleep=lambda s: None)

    assert client.get_object(Bucket="lineage", Key="2026/sku-1.mp4")["Body"].read() == MP4_BYTES
    # ObjectStoragePath names its connection in the URI it reports
    assert uris(collector.collected_assets.outputs) == [str(destination)] == ["s3://aws_test@lineage/2026/sku-1.mp4"]
