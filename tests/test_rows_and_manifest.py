"""Batch rows (validation, destinations, request ids) and the manifest contract, without any HTTP."""

from __future__ import annotations

import json

import pytest

from airflow_provider_magicvideo.emulator.testing import data_uri, png_bytes
from airflow_provider_magicvideo.exceptions import InvalidInputError
from airflow_provider_magicvideo.manifest import ROW_KEYS, build_manifest, task_label, write_manifest
from airflow_provider_magicvideo.rows import plan_rows, row_request_id

IMAGE = data_uri(png_bytes((1, 2, 3), (32, 24)))


def plan(rows, folder="/data/out", **kwargs):
    return plan_rows(rows, model="magic/image-to-video", template=None, folder=folder, dest_conn_id=None,
                     max_media_bytes=None, **kwargs)


def test_a_row_without_destination_goes_to_the_folder_as_key_mp4_and_a_row_destination_wins():
    valid, invalid = plan([{"key": "a", "image": IMAGE}, {"key": "b", "image": IMAGE, "template": "art gallery",
                                                          "destination": "s3://bucket/x/b-final.mp4"}])
    assert invalid == []
    assert [r.destination for r in valid] == ["file:///data/out/a.mp4", "s3://bucket/x/b-final.mp4"]
    assert valid[1].template == "Art Gallery"  # resolved as a single submit resolves it
    assert valid[0].model == "magic/image-to-video"


@pytest.mark.parametrize(("row", "field"), [
    ({"key": "../etc", "image": IMAGE}, "key:"),
    ({"image": IMAGE}, "key:"),
    ({"key": "a", "image": IMAGE, "model": "magic/nope"}, "model"),
    ({"key": "a", "image": IMAGE, "prompt": "x"}, "prompt"),
    ({"key": "a", "image": "not base64 !!"}, "image:"),
    ({"key": "a", "image": IMAGE, "destination": "s3://bucket/folder/"}, "destination:"),
    ("just a string", "expected a dict"),
])
def test_every_bad_row_is_reported_with_its_field(row, field):
    valid, [bad] = plan([{"key": "ok", "image": IMAGE}, row])
    assert [r.key for r in valid] == ["ok"]
    assert bad.index == 2 and field in bad.message
    assert bad.describe().startswith("row 2 (key ")


def test_without_a_folder_a_row_needs_its_own_destination():
    _, [bad] = plan([{"key": "a", "image": IMAGE}], folder=None)
    assert "destination" in bad.message and "folder" in bad.message


def test_two_rows_may_not_share_a_destination():
    _, [bad] = plan([{"key": "a", "image": IMAGE}, {"key": "b", "image": IMAGE, "destination": "/data/out/a.mp4"}])
    assert bad.key == "b" and "also row 'a'" in bad.message


def test_rows_must_be_a_list():
    with pytest.raises(InvalidInputError, match="rows"):
        plan({"key": "a"})


def test_row_request_ids_are_stable_distinct_and_valid():
    base = "airflow:dag:task:manual__2026:-1"
    assert row_request_id(base, "a") == row_request_id(base, "a") != row_request_id(base, "b")
    long = row_request_id(base, "k" * 100)
    assert len(long) <= 128 and long != row_request_id(base, "k" * 99)


def test_the_manifest_has_exactly_the_contract_keys(tmp_path):
    built = build_manifest(task_label("dag", "task", 3), [
        {"key": "a", "status": "delivered", "credits_used": 1_050_000, "uri": "file:///a.mp4", "extra": 1},
        {"key": "b", "status": "failed", "credits_used": 0, "error": "RenderError: boom"},
        {"key": None, "status": "invalid", "error": "key: ..."},
    ], generated_at=1_800_000_000)
    assert built["task"] == "dag.task[3]" and task_label("dag", "task", -1) == "dag.task"
    assert built["generated_at"] == "2027-01-15T08:00:00+00:00"
    assert built["credits_used"] == 1_050_000
    assert [tuple(row) for row in built["rows"]] == [ROW_KEYS] * 3
    assert built["rows"][2]["generation_id"] is None
    assert write_manifest(tmp_path / "out", built) == f"file://{tmp_path}/out/manifest.json"
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == built
    assert write_manifest(f"{tmp_path}/chunk-1.json", built) == f"file://{tmp_path}/chunk-1.json"
