"""The /v2 API and the signed file endpoint, over real sockets."""

from __future__ import annotations

import base64
import http.server
import re
import threading
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
import requests

from airflow_provider_magicvideo.emulator import run_emulator
from airflow_provider_magicvideo.emulator.errors import NO_CREDITS
from airflow_provider_magicvideo.emulator.testing import AUTH, data_uri, png_bytes, status, submit, wait_final

pytestmark = pytest.mark.integration

ERROR_KEYS = {"message", "path", "requestId", "statusCode", "timestamp"}
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def assert_error_body(response: requests.Response, code: int) -> dict:
    assert response.status_code == code
    body = response.json()
    assert set(body) >= ERROR_KEYS
    assert body["statusCode"] == str(code)
    assert ISO_Z.match(body["timestamp"])
    return body


def test_post_answers_queued_with_billing_headers(emulator):
    response = submit(emulator.base_url)
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"f_[A-Za-z0-9_-]{19}", body["id"])
    assert body["status"] == "queued"
    assert body["meta"] == {"usage": {"credits_used": 1050000}}
    assert response.headers["x-aimlapi-credits-used"] == "1050000"
    assert float(response.headers["x-aimlapi-usd-spent"]) > 0
    assert response.headers["x-inference-id"]


def test_lifecycle_completes_with_fresh_signed_urls(emulator):
    emulator.pause_clock()  # statuses move only when the test moves the clock
    job_id = submit(emulator.base_url).json()["id"]
    seen = [status(emulator.base_url, job_id).json()["status"]]
    emulator.advance_clock(0.5)
    seen.append(status(emulator.base_url, job_id).json()["status"])
    emulator.complete_pending()
    final, later = wait_final(emulator.base_url, job_id)
    assert final["status"] == "completed", final
    assert seen == ["queued", "generating"] and set(later) <= {"generating", "completed"}
    url = urlsplit(final["video"]["url"])
    assert url.path == f"/files/{job_id}.mp4"
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["600"]
    assert re.fullmatch(r"[0-9a-f]{64}", query["X-Amz-Signature"][0])
    assert re.fullmatch(r"attachment; filename=[0-9a-f]{32}\.mp4", query["response-content-disposition"][0])
    download = requests.get(final["video"]["url"], timeout=10)
    assert download.status_code == 200
    assert download.headers["content-type"] == "video/mp4"
    assert int(download.headers["content-length"]) == len(download.content) > 1000
    assert download.content[4:8] == b"ftyp"
    emulator.advance_clock(1.0)
    again = status(emulator.base_url, job_id).json()["video"]["url"]
    assert parse_qs(urlsplit(again).query)["X-Amz-Date"] != query["X-Amz-Date"]


def test_range_request_is_partial(emulator):
    final, _ = wait_final(emulator.base_url, submit(emulator.base_url).json()["id"])
    url = final["video"]["url"]
    full = requests.get(url, timeout=10).content
    part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-19/{len(full)}"
    assert part.content == full[10:20]
    assert emulator.stats()["file_requests"] == {"GET 200": 1, "GET 206": 1}


def test_bad_or_missing_signature_is_403_xml(emulator):
    final, _ = wait_final(emulator.base_url, submit(emulator.base_url).json()["id"])
    url = urlsplit(final["video"]["url"])
    tampered = url.query.replace("X-Amz-Expires=600", "X-Amz-Expires=6000")
    response = requests.get(urlunsplit(url._replace(query=tampered)), timeout=10)
    assert response.status_code == 403
    assert response.text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch'
    )
    bare = requests.get(urlunsplit(url._replace(query="")), timeout=10)
    assert bare.status_code == 403 and "<Code>AccessDenied</Code>" in bare.text


def test_expired_url_is_403_request_has_expired(emulator):
    emulator.set_faults(url_expiry=1)
    final, _ = wait_final(emulator.base_url, submit(emulator.base_url).json()["id"])
    assert "X-Amz-Expires=1&" in final["video"]["url"]
    assert requests.get(final["video"]["url"], timeout=10).status_code == 200
    emulator.advance_clock(2.1)
    response = requests.get(final["video"]["url"], timeout=10)
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in response.text


def test_short_expiry_profile(emulator):
    emulator.set_faults("short_expiry")
    final, _ = wait_final(emulator.base_url, submit(emulator.base_url).json()["id"])
    assert parse_qs(urlsplit(final["video"]["url"]).query)["X-Amz-Expires"] == ["5"]


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        (
            {"model": "magic/image-to-video", "image_url": "eA==", "template": "Times square billboard"},
            [["template"]],
        ),
        (
            {"model": "magic/image-to-video", "image_url": "eA==", "template": "Rotating Сards"},
            [["template"]],
        ),
        (
            {"model": "magic/video-to-video", "video_url": "eA==", "template": "New York Times Square (66)"},
            [["template"]],
        ),
        ({"model": "magic/image-to-video", "template": "Nope"}, [["image_url"], ["template"]]),
        ({"model": "magic/text-to-video", "prompt": ""}, [["prompt"]]),
        ({"model": "magic/image-to-video", "image_url": "ftp://host/x.png"}, [["image_url"]]),
        ({"model": "magic/image-to-video", "image_url": 5}, [["image_url"]]),
        ({"model": "magic/picture", "image_url": "eA=="}, [["model"]]),
        ({"image_url": "eA=="}, [["model"]]),
        ([1, 2], [[]]),
    ],
)
def test_body_validation_errors(emulator, body, paths):
    body_out = assert_error_body(submit(emulator.base_url, body), 400)
    assert body_out["message"] == "Body validation error!"
    assert body_out["path"] == "/v2/video/generations"
    assert [issue["path"] for issue in body_out["meta"]] == paths
    assert emulator.stats()["jobs_created"] == 0


def test_template_issue_lists_exact_enum(emulator):
    issue = submit(
        emulator.base_url, {"model": "magic/image-to-video", "image_url": "eA==", "template": "X"}
    ).json()["meta"][0]
    assert issue["code"] == "invalid_enum_value"
    assert issue["received"] == "X"
    assert issue["message"].startswith(
        "Invalid enum value. Expected 'Thailand Street' | 'Times Square Billboard'"
    )
    assert issue["message"].endswith("'Paris Eiffel Tower', received 'X'")


def test_non_json_body_is_400(emulator):
    response = requests.post(
        f"{emulator.base_url}/video/generations", data=b"{nope", headers=AUTH, timeout=10
    )
    assert assert_error_body(response, 400)["meta"][0]["path"] == []


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}, {"Authorization": "Bearer"}]
)
def test_missing_or_malformed_auth_is_401(emulator, headers):
    for response in (
        requests.post(f"{emulator.base_url}/video/generations", json={}, headers=headers, timeout=10),
        requests.get(
            f"{emulator.base_url}/video/generations",
            params={"generation_id": "x"},
            headers=headers,
            timeout=10,
        ),
    ):
        assert assert_error_body(response, 401)["message"].startswith(
            "This request requires a valid API key."
        )


def test_unknown_generation_is_404_and_missing_id_is_400(emulator):
    body = assert_error_body(status(emulator.base_url, "f_doesnotexist"), 404)
    assert body["path"] == "/v2/video/generations"
    missing = requests.get(f"{emulator.base_url}/video/generations", headers=AUTH, timeout=10)
    assert assert_error_body(missing, 400)["meta"][0]["path"] == ["generation_id"]
    assert_error_body(requests.get(f"{emulator.base_url}/nothing", headers=AUTH, timeout=10), 404)


def test_configured_keys_and_credit_balance():
    with run_emulator(render="fast", render_seconds=0.2, keys={"good-key"}, credits=2 * 1_050_000) as server:
        good = {"Authorization": "Bearer good-key"}
        assert assert_error_body(submit(server.base_url, headers={"Authorization": "Bearer bad"}), 401)
        assert submit(server.base_url, headers=good).status_code == 200
        assert submit(server.base_url, headers=good).status_code == 200
        body = assert_error_body(submit(server.base_url, headers=good), 403)
        assert body["message"] == NO_CREDITS
        assert server.stats()["jobs_created"] == 2


def test_unreachable_url_ends_in_error_status(emulator):
    for url in ("http://127.0.0.1:9/missing.png", "https://raw.githubusercontent.com/someone-else/x/a.jpg"):
        job_id = submit(emulator.base_url, {"model": "magic/image-to-video", "image_url": url}).json()["id"]
        final, _ = wait_final(emulator.base_url, job_id)
        assert final["status"] == "error"
        assert final["error"]["name"] == "MediaDownloadError"
        assert final["error"]["message"]


@pytest.mark.parametrize(
    "media", [data_uri(b"not an image"), base64.b64encode(b"plain text").decode(), "%%% not base64 %%%"]
)
def test_undecodable_input_ends_in_error_status(emulator, media):
    job_id = submit(emulator.base_url, {"model": "magic/image-to-video", "image_url": media}).json()["id"]
    final, _ = wait_final(emulator.base_url, job_id)
    assert final == {"id": job_id, "status": "error", "error": final["error"]}
    assert final["error"]["name"] == "InvalidMediaError"


def test_bare_base64_and_fetched_url_inputs_complete(emulator, tmp_path):
    (tmp_path / "pic.png").write_bytes(png_bytes((10, 200, 30)))
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/pic.png"
        ids = [
            submit(
                emulator.base_url,
                {"model": "magic/image-to-video", "image_url": url, "template": "Egypt Pyramid"},
            ).json()["id"],
            submit(
                emulator.base_url,
                {"model": "magic/image-to-video", "image_url": base64.b64encode(png_bytes()).decode()},
            ).json()["id"],
        ]
        for job_id in ids:
            assert wait_final(emulator.base_url, job_id)[0]["status"] == "completed"
    finally:
        httpd.shutdown()


def test_text_and_video_models_complete(emulator):
    t2v = submit(emulator.base_url, {"model": "magic/text-to-video", "prompt": "Airflow"}).json()["id"]
    final, _ = wait_final(emulator.base_url, t2v)
    assert final["status"] == "completed"
    clip = requests.get(final["video"]["url"], timeout=10).content
    v2v = submit(
        emulator.base_url,
        {
            "model": "magic/video-to-video",
            "video_url": data_uri(clip, "video/mp4"),
            "template": "New York Times Square (78)",
        },
    ).json()["id"]
    assert wait_final(emulator.base_url, v2v)[0]["status"] == "completed"


def test_stats_counts_requests_client_ids_and_completion(emulator):
    paused_at = emulator.pause_clock()
    first = submit(emulator.base_url, headers={**AUTH, "X-Client-Request-Id": "req-1"}).json()["id"]
    submit(emulator.base_url, headers={**AUTH, "X-Client-Request-Id": "req-2"})
    submit(emulator.base_url, {"model": "bad"}, headers={**AUTH, "X-Client-Request-Id": "req-3"})
    emulator.complete_pending()
    wait_final(emulator.base_url, first)
    stats = emulator.stats()
    assert stats["requests"]["POST 200"] == 2
    assert stats["requests"]["POST 400"] == 1
    assert stats["requests"]["GET 200"] >= 1
    assert stats["total_posts"] == 3
    assert stats["jobs_created"] == 2
    assert stats["posts_by_client_request_id"] == {"req-1": 1, "req-2": 1}
    assert stats["post_attempts_by_client_request_id"] == {"req-1": 1, "req-2": 1, "req-3": 1}
    assert stats["jobs_by_status"].get("completed", 0) >= 1
    assert stats["completed_at"][first] == paused_at  # released at the paused instant
    emulator.reset()
    cleared = emulator.stats()
    assert cleared["total_posts"] == 0 and cleared["jobs_by_status"] == {} and cleared["requests"] == {}


def test_offline_sample_url_uses_generated_logo(emulator):
    url = "https://raw.githubusercontent.com/aimlapi/api-docs/main/reference-files/aimlapi.jpg"
    job_id = submit(emulator.base_url, {"model": "magic/image-to-video", "image_url": url}).json()["id"]
    assert wait_final(emulator.base_url, job_id)[0]["status"] == "completed"
