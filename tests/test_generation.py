"""Generation.from_payload: every status, the unusable answers, credits, URL expiry, result(), ids."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_magicvideo import generation as generation_module
from airflow_provider_magicvideo.exceptions import InvalidInputError, UnexpectedResponseError
from airflow_provider_magicvideo.generation import (
    RESULT_KEYS,
    URL_LIFETIME_SECONDS,
    Generation,
    GenerationStatus,
    resolve_generation_id,
)

VIDEO_URL = (
    "https://cdn.example.com/renders/f_X.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Date=20250102T030405Z&X-Amz-Expires=600&X-Amz-Signature=abc"
)


@pytest.fixture(autouse=True)
def _reset_unknown_warnings():
    generation_module._warned_unknown.clear()
    yield
    generation_module._warned_unknown.clear()


@pytest.mark.parametrize("status", ["queued", "waiting", "generating"])
def test_pending_statuses(status):
    gen = Generation.from_payload({"id": "f_X_2W", "status": status})
    assert gen.id == "f_X_2W"
    assert gen.status is GenerationStatus(status)
    assert gen.raw_status == status
    assert not gen.is_terminal
    assert gen.video_url is None and gen.url_expires_at is None
    assert gen.error_name is None and gen.error_message is None


def test_status_is_case_and_space_tolerant():
    gen = Generation.from_payload({"id": "g", "status": " Generating "})
    assert gen.status is GenerationStatus.GENERATING
    assert gen.raw_status == " Generating "


def test_completed_with_video_url():
    gen = Generation.from_payload({"id": "g1", "status": "completed", "video": {"url": VIDEO_URL}})
    assert gen.status is GenerationStatus.COMPLETED
    assert gen.is_terminal
    assert gen.video_url == VIDEO_URL


def test_error_with_name_and_message():
    gen = Generation.from_payload(
        {"id": "g2", "status": "error", "error": {"name": "RenderError", "message": "face not found"}}
    )
    assert gen.status is GenerationStatus.ERROR
    assert gen.is_terminal
    assert (gen.error_name, gen.error_message) == ("RenderError", "face not found")


def test_error_variants():
    gen = Generation.from_payload({"id": "g", "status": "error", "error": {"code": 500}})
    assert (gen.error_name, gen.error_message) == ("500", None)
    gen = Generation.from_payload({"id": "g", "status": "error", "error": "plain text"})
    assert (gen.error_name, gen.error_message) == (None, "plain text")
    gen = Generation.from_payload({"id": "g", "status": "error"})
    assert (gen.error_name, gen.error_message) == (None, None)


def test_generation_id_falls_back_to_the_requested_one():
    gen = Generation.from_payload({"status": "queued"}, generation_id="asked-for")
    assert gen.id == "asked-for"
    assert Generation.from_payload({"id": "asked", "status": "queued"}, generation_id="asked").id == "asked"


def test_another_generations_id_is_a_failed_poll():
    with pytest.raises(UnexpectedResponseError, match=r"status request for asked with another generation's id"):
        Generation.from_payload({"id": "given", "status": "completed", "video": {"url": VIDEO_URL}},
                                generation_id="asked")
    assert UnexpectedResponseError.disposition.transient


def test_unknown_status_is_pending_and_warned_once_per_string(caplog):
    caplog.set_level(logging.WARNING, logger="airflow_provider_magicvideo.generation")
    for _ in range(3):
        gen = Generation.from_payload({"id": "g", "status": "upscaling"})
        assert gen.status is GenerationStatus.UNKNOWN
        assert gen.raw_status == "upscaling"
        assert not gen.is_terminal
    Generation.from_payload({"id": "g", "status": "postprocessing"})
    Generation.from_payload({"id": "g", "status": "upscaling"})
    warnings = [r for r in caplog.records if r.name == "airflow_provider_magicvideo.generation"]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.WARNING]
    assert "'upscaling'" in warnings[0].getMessage()
    assert "treating it as pending" in warnings[0].getMessage()
    assert "'postprocessing'" in warnings[1].getMessage()


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"id": "g"}, "generation g has no status"),
        ({"id": "g", "status": ""}, "generation g has no status"),
        ({"id": "g", "status": 3}, "generation g has no status"),
        ({"status": "queued"}, "has no generation id"),
        ({"id": 12, "status": "queued"}, "has no generation id"),
        ([{"id": "g"}], "answered with a list, not a JSON object"),
        ("queued", "answered with a str, not a JSON object"),
        (None, "answered with a NoneType, not a JSON object"),
        ({"id": "g", "status": "completed"}, "completed but gives no video.url"),
        ({"id": "g", "status": "completed", "video": {"url": ""}}, "completed but gives no video.url"),
        ({"id": "g", "status": "completed", "video": "https://x/y.mp4"}, "completed but gives no video.url"),
        ({"id": "g", "status": "completed", "video": {"url": 5}}, "completed but gives no video.url"),
    ],
)
def test_unusable_payloads(payload, match):
    with pytest.raises(UnexpectedResponseError, match=match) as info:
        Generation.from_payload(payload, headers={"X-Inference-Id": "inf-7"})
    assert info.value.request_id == "inf-7"


def test_credits_from_meta_usage():
    gen = Generation.from_payload(
        {"id": "g", "status": "queued", "meta": {"usage": {"credits_used": 1050000}}},
        headers={"x-aimlapi-credits-used": "5"},
    )
    assert gen.credits_used == 1050000


@pytest.mark.parametrize(
    ("payload_meta", "headers", "credits"),
    [
        (None, {"X-AIMLAPI-Credits-Used": "1050000"}, 1050000),
        ({"usage": {}}, {"x-aimlapi-credits-used": "12.0"}, 12),
        ({"usage": "n/a"}, {}, None),
        ("odd", {"x-aimlapi-credits-used": "lots"}, None),
    ],
)
def test_credits_from_headers(payload_meta, headers, credits):
    payload = {"id": "g", "status": "queued"}
    if payload_meta is not None:
        payload["meta"] = payload_meta
    gen = Generation.from_payload(payload, headers=headers)
    assert gen.credits_used == credits


def test_request_id_from_headers():
    assert Generation.from_payload({"id": "g", "status": "queued"}, headers={"X-Request-Id": "r"}).request_id == "r"
    assert Generation.from_payload({"id": "g", "status": "queued"}).request_id is None


def test_url_expires_at_from_the_signature():
    gen = Generation.from_payload({"id": "g", "status": "completed", "video": {"url": VIDEO_URL}})
    assert gen.url_expires_at == datetime(2025, 1, 2, 3, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/v.mp4",
        "https://cdn.example.com/v.mp4?X-Amz-Date=20250102T030405Z",
        "https://cdn.example.com/v.mp4?X-Amz-Date=yesterday&X-Amz-Expires=600",
        "https://cdn.example.com/v.mp4?X-Amz-Date=20250102T030405Z&X-Amz-Expires=ten",
    ],
)
def test_url_expires_at_fallback_is_600s_from_now(url):
    gen = Generation.from_payload({"id": "g", "status": "completed", "video": {"url": url}})
    before = datetime.now(UTC)
    expires = gen.url_expires_at
    after = datetime.now(UTC)
    assert URL_LIFETIME_SECONDS == 600
    assert before + timedelta(seconds=600) <= expires <= after + timedelta(seconds=600)


def test_generation_is_immutable():
    gen = Generation.from_payload({"id": "g", "status": "queued", "meta": {"usage": {"credits_used": 1}}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        gen.status = GenerationStatus.COMPLETED  # type: ignore[misc]
    same = {"id": "g", "status": "queued", "meta": {"usage": {"credits_used": 1}}, "x": 1}
    assert Generation.from_payload(same) == gen  # unknown fields are not kept


def test_status_properties():
    assert {s for s in GenerationStatus if s.is_terminal} == {GenerationStatus.COMPLETED, GenerationStatus.ERROR}
    assert not GenerationStatus.UNKNOWN.is_terminal


def test_result_is_the_downstream_dict():
    gen = Generation.from_payload({"id": "g1", "status": "completed", "video": {"url": VIDEO_URL},
                                   "meta": {"usage": {"credits_used": 7}}})
    result = gen.result(model="magic/image-to-video", template="Art Gallery")
    assert tuple(result) == RESULT_KEYS
    assert result == {"generation_id": "g1", "status": "completed", "video_url": VIDEO_URL,
                      "url_expires_at": "2025-01-02T03:14:05+00:00", "credits_used": 7,
                      "model": "magic/image-to-video", "template": "Art Gallery"}
    assert gen.result(credits_used=9)["credits_used"] == 9
    assert Generation.from_payload({"id": "g", "status": "queued"}).result()["url_expires_at"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("gen-1", "gen-1"), ("  gen-1 ", "gen-1"), ({"generation_id": "gen-2"}, "gen-2"), ({"id": "gen-3"}, "gen-3"),
     ('{"generation_id": "gen-4", "status": "completed"}', "gen-4"),
     ("{'generation_id': 'gen-5', 'credits_used': None}", "gen-5")],
)
def test_resolve_generation_id(value, expected):
    assert resolve_generation_id(value) == expected


@pytest.mark.parametrize("value", [None, "", "  ", "None", "null", 42, {"status": "x"}, ["gen-1"]])
def test_resolve_generation_id_refuses(value):
    with pytest.raises(InvalidInputError, match=r"^generation_id: .* is not a generation id"):
        resolve_generation_id(value)
