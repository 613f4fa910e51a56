"""Documented tracing headers, error texts, statuses and sound, over a real socket.

Docs: ``request-tracing-and-cost.md`` (headers), ``errors-and-messages/*`` (texts and body), the magic doc
pages (``active``/``waiting`` in the sample loops; text-to-video "without sound").
"""

from __future__ import annotations

import io

import av
import pytest
import requests

from airflow_provider_magicvideo.emulator.testing import AUTH, status, submit, wait_status

pytestmark = pytest.mark.integration
T2V = {"model": "magic/text-to-video", "prompt": "AI/ML API"}
ERROR_KEYS = {"message", "path", "requestId", "statusCode", "timestamp"}


def test_submit_and_every_poll_carry_the_generation_id(fast):
    headers = {**AUTH, "X-Client-Request-Id": "order-8f21c4"}
    response = submit(fast.base_url, headers=headers)
    job_id = response.json()["id"]
    assert response.headers["x-inference-id"] == job_id
    assert response.headers["x-client-request-id"] == "order-8f21c4"
    assert response.headers["x-aimlapi-credits-used"] == "1050000"  # an integer: the quote
    assert response.headers["x-aimlapi-usd-spent"] == "0.525000000"
    assert "x-inference-id" in response.headers["access-control-expose-headers"]
    fast.complete_pending()
    for _ in range(3):
        poll = requests.get(f"{fast.base_url}/video/generations", params={"generation_id": job_id},
                            headers=headers, timeout=10)
        assert poll.headers["x-inference-id"] == job_id
        assert poll.headers["x-client-request-id"] == "order-8f21c4"
        assert poll.headers["x-aimlapi-credits-used"] == "0"  # a poll itself costs nothing


def test_malformed_poll_id_gets_no_inference_id_and_bad_client_ids_are_dropped(fast):
    assert "x-inference-id" not in status(fast.base_url, "not an id").headers
    unknown = status(fast.base_url, "f_" + "A" * 19)
    assert unknown.status_code == 404 and unknown.headers["x-inference-id"] == "f_" + "A" * 19
    for bad in ("has space", "x" * 129, "ünïcode"):
        response = submit(fast.base_url, headers={**AUTH, "X-Client-Request-Id": bad.encode().decode("latin-1")})
        assert response.status_code == 200  # a malformed id never fails the request
        assert "x-client-request-id" not in response.headers


@pytest.mark.parametrize(
    ("code", "message"),
    [(500, "Internal server error"), (502, "Bad Gateway"), (503, "Service unavailable"), (504, "Generation timeout")],
)
def test_documented_5xx_texts(fast, code, message):
    fast.set_faults(error_rate=1.0, error_codes=[code])
    response = submit(fast.base_url)
    body = response.json()
    assert response.status_code == code and body["message"] == message and body["statusCode"] == str(code)
    assert set(body) == ERROR_KEYS and body["requestId"] == response.headers["x-request-id"]
    assert response.headers["x-inference-id"].startswith("f_")  # documented as always present
    assert "Retry-After" not in response.headers


def test_documented_4xx_texts(fast):
    unauthorized = submit(fast.base_url, headers={"Authorization": "Bearer "})
    assert unauthorized.status_code == 401
    assert unauthorized.json()["message"] == (
        "This request requires a valid API key. You can create a new API key on the Billing page: "
        "https://aimlapi.com/app/keys"
    )
    invalid = submit(fast.base_url, {"model": "magic/image-to-video"})
    assert invalid.status_code == 400 and invalid.json()["message"] == "Body validation error!"
    assert set(invalid.json()) == ERROR_KEYS | {"meta"} and invalid.json()["meta"][0]["path"] == ["image_url"]
    fast.set_faults("no_credits")
    refused = submit(fast.base_url)
    assert refused.status_code == 403 and refused.json()["message"] == (
        "You've run out of credits. Please top up your balance or update your payment method to continue: "
        "https://aimlapi.com/app/billing/"
    )


def test_retry_after_only_from_the_profile_that_says_so(fast):
    fast.set_faults("rate_limit")
    limited = submit(fast.base_url)
    assert limited.status_code == 429 and limited.json()["message"] == "Too Many Requests"
    assert "Retry-After" not in limited.headers
    fast.set_faults("rate_limit_retry_after")
    assert submit(fast.base_url).headers["Retry-After"] == "1"


def statuses_at(fast, body, count, advance):
    """Submit ``count`` jobs with the clock paused, move it ``advance`` seconds, read each status once."""
    fast.pause_clock()
    ids = [submit(fast.base_url, body).json()["id"] for _ in range(count)]
    fast.advance_clock(advance)
    return [status(fast.base_url, job_id).json()["status"] for job_id in ids]


def test_active_is_seeded_text_to_video_only(fast):
    first = statuses_at(fast, T2V, 12, 3.0)  # render 10 s: queued to 1 s, then active to 5.5 s for some
    assert set(first) == {"active", "generating"}
    fast.reset()
    assert statuses_at(fast, T2V, 12, 3.0) == first  # the same jobs again: deterministic
    fast.reset()
    assert set(statuses_at(fast, None, 12, 3.0)) == {"generating"}  # image-to-video's sample stops at active
    fast.reset()
    fast.set_faults("active_status")
    assert set(statuses_at(fast, None, 3, 3.0)) == {"active"}


def test_waiting_only_when_a_profile_asks(fast):
    assert set(statuses_at(fast, None, 6, 1.5)) == {"generating"}
    fast.reset()
    fast.set_faults(waiting_rate=1.0)
    assert set(statuses_at(fast, None, 3, 1.5)) == {"waiting"}  # between 1 s and 2 s of a 10 s render
    fast.advance_clock(1.0)
    assert submit(fast.base_url).status_code == 200


def test_statuses_seen_over_a_whole_render_are_documented(fast):
    fast.pause_clock()
    ids = [submit(fast.base_url, body).json()["id"] for body in (T2V, T2V, T2V, None)]
    seen = set()
    for _ in range(12):
        seen |= {status(fast.base_url, job_id).json()["status"] for job_id in ids}
        fast.advance_clock(1.0)
    assert seen <= {"queued", "active", "generating", "completed"} and {"queued", "completed"} <= seen


def audio_streams(url: str) -> list[str]:
    data = requests.get(url, timeout=10).content
    with av.open(io.BytesIO(data)) as container:
        return [s.codec_context.name for s in container.streams if s.type == "audio"]


def test_text_to_video_has_no_sound_image_to_video_has(fast):
    t2v = submit(fast.base_url, T2V).json()["id"]
    i2v = submit(fast.base_url).json()["id"]
    fast.complete_pending()
    assert audio_streams(wait_status(fast.base_url, t2v, "completed")["video"]["url"]) == []
    assert audio_streams(wait_status(fast.base_url, i2v, "completed")["video"]["url"]) == ["aac"]
