"""Tests of :mod:`airflow_provider_magicvideo.delivery`.

Unit tests fake the API and the CDN with requests-mock (status GET + file GET) and deliver to ``file://``
paths in ``tmp_path``; the memory test streams 200 MB from a local HTTP server; the integration tests
deliver real emulator renders to ``file://`` and to S3 served by moto.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import requests_mock as rm

from airflow_provider_magicvideo.delivery import DeliveryResult, as_destination, str_uri
from airflow_provider_magicvideo.delivery import deliver_generation as _deliver_generation
from airflow_provider_magicvideo.exceptions import (
    ApiConnectionError,
    DeliveryError,
    GenerationNotFoundError,
    PermanentDeliveryError,
    RenderNotCompletedError,
)
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.redaction import strip_signature
from tests.s3_server import s3_endpoint  # noqa: F401  (fixture)
from tooling.s3 import s3_client
from tooling.sampling import RssPeak

BASE = "https://api.magic.test/v2"
CDN = "https://cdn.magic.test/files/"
GEN = "gen-7f3a"
SIGNATURE = "deadbeefsignature"


def mp4_bytes(size: int, seed: int = 1) -> bytes:
    """``size`` bytes that start like an MP4 (``ftyp`` box at byte 4)."""
    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2mp41"
    return (head + random.Random(seed).randbytes(max(0, size - len(head))))[:size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DroppingBody(io.RawIOBase):
    """A response body that resets the connection after ``data``."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._buf.readinto(b)
        if not n:
            raise ConnectionResetError(104, "Connection reset by peer")
        return n


Action = Callable[["FakeApi", Any, int], Any]


class FakeApi:
    """The status endpoint and the CDN, faked with requests-mock; file answers follow ``plan``."""

    def __init__(self, mocker: rm.Mocker, data: bytes) -> None:
        self.data = data
        self.status: dict[str, Any] = {"status": "completed"}
        self.plan: list[Action] = []
        self.status_gets = 0
        self.file_ranges: list[str | None] = []
        mocker.get(f"{BASE}/video/generations", json=self._status)
        mocker.add_matcher(self._file)

    def _status(self, request: Any, context: Any) -> dict[str, Any]:
        self.status_gets += 1
        body = {"id": GEN, **self.status}
        if body["status"] == "completed":
            body["video"] = {"url": f"{CDN}{GEN}.mp4?X-Amz-Date=20260101T000000Z&X-Amz-Expires=600"
                                    f"&X-Amz-Signature={SIGNATURE}{self.status_gets}"}
        return body

    def _file(self, request: Any) -> Any:
        if not request.url.startswith(CDN):
            return None
        header = request.headers.get("Range")
        self.file_ranges.append(header)
        start = int(header.split("=")[1].rstrip("-")) if header else 0
        action = self.plan.pop(0) if self.plan else serve
        return action(self, request, start)

    @property
    def file_gets(self) -> int:
        return len(self.file_ranges)


def _response(request: Any, status: int, body: Any, headers: dict[str, str]) -> Any:
    return rm.create_response(request, status_code=status, headers=headers, raw=None, body=body)


def serve(api: FakeApi, request: Any, start: int) -> Any:
    data = api.data[start:]
    headers = {"Content-Length": str(len(data)), "Content-Type": "video/mp4"}
    if start:
        headers["Content-Range"] = f"bytes {start}-{len(api.data) - 1}/{len(api.data)}"
    return _response(request, 206 if start else 200, io.BytesIO(data), headers)


def serve_full(api: FakeApi, request: Any, start: int) -> Any:
    """Ignore Range: 200 with the whole body."""
    return serve(api, request, 0)


def forbidden(api: FakeApi, request: Any, start: int) -> Any:
    xml = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    return _response(request, 403, io.BytesIO(xml), {"Content-Type": "application/xml"})


def drop_after(n: int) -> Action:
    def action(api: FakeApi, request: Any, start: int) -> Any:
        resp = serve(api, request, start)
        resp.raw._fp = DroppingBody(api.data[start:start + n])
        return resp

    return action


def announce(length: int) -> Action:
    """200 with the whole body but a wrong Content-Length."""

    def action(api: FakeApi, request: Any, start: int) -> Any:
        return _response(request, 200, io.BytesIO(api.data), {"Content-Length": str(length)})

    return action


def wrong_range(api: FakeApi, request: Any, start: int) -> Any:
    """206 that starts at byte 0 whatever was asked."""
    total = len(api.data)
    return _response(request, 206, io.BytesIO(api.data),
                     {"Content-Length": str(total), "Content-Range": f"bytes 0-{total - 1}/{total}"})


SLEEPS: list[float] = []


def deliver_generation(*args: Any, **kwargs: Any) -> DeliveryResult:
    """``deliver_generation`` without real back-off: the delays asked for are recorded in ``SLEEPS``."""
    return _deliver_generation(*args, sleep=SLEEPS.append, **kwargs)


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
def _no_backoff() -> Iterator[None]:
    SLEEPS.clear()
    yield
    SLEEPS.clear()


@pytest.fixture
def hook(magicvideo_conn: Any) -> Iterator[MagicVideoHook]:
    magicvideo_conn(BASE, max_retries=0)
    h = MagicVideoHook()
    yield h
    h.close()


DATA = mp4_bytes(1_000_000)


@pytest.fixture
def api(requests_mock: rm.Mocker) -> FakeApi:
    return FakeApi(requests_mock, DATA)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part-" in p.name)


# ============================================================================================ happy path
def test_delivers_streamed_file_with_size_and_sha256(hook, api, tmp_path):
    target = tmp_path / "out" / "video.mp4"
    result = deliver_generation(hook, GEN, f"file://{target}", chunk_size=64 * 1024)

    assert target.read_bytes() == DATA
    assert result == DeliveryResult(uri=f"file://{target}", size=len(DATA), sha256=sha(DATA), generation_id=GEN,
                                    skipped=False, attempts=1)
    assert result.content_type == "video/mp4"
    assert result.as_xcom() == {"uri": f"file://{target}", "size": len(DATA), "sha256": sha(DATA),
                                "content_type": "video/mp4", "generation_id": GEN, "skipped": False}
    assert (api.status_gets, api.file_ranges) == (1, [None])
    assert leftovers(target.parent) == []


@pytest.mark.parametrize("kind", ["plain", "objectstoragepath", "relative"])
def test_accepts_plain_paths_and_objectstoragepath(hook, api, tmp_path, monkeypatch, kind):
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    target = tmp_path / "v.mp4"
    destination: Any = {"plain": str(target), "objectstoragepath": ObjectStoragePath(f"file://{target}"),
                        "relative": "v.mp4"}[kind]
    monkeypatch.chdir(tmp_path)
    result = deliver_generation(hook, GEN, destination)
    assert target.read_bytes() == DATA
    assert result.uri == f"file://{target}"


def test_logs_start_and_end_without_the_signature(hook, api, tmp_path, caplog):
    api.plan = [forbidden, drop_after(100_000)]
    with caplog.at_level(logging.INFO, logger="airflow_provider_magicvideo.delivery"):
        result = deliver_generation(hook, GEN, tmp_path / "v.mp4")
    text = caplog.text
    assert f"Delivering generation {GEN} to {result.uri}" in text
    assert f"Delivered generation {GEN} to {result.uri}: {len(DATA)} bytes, sha256 {sha(DATA)}" in text
    assert "MB/s" in text
    assert SIGNATURE not in text and "X-Amz-Signature" not in text
    assert result.attempts == 3


# ================================================================================ integrity failures
def test_body_longer_than_content_length_fails_and_leaves_nothing(hook, api, tmp_path):
    api.plan = [announce(len(DATA) - 10)]
    with pytest.raises(PermanentDeliveryError, match="more than the announced"):
        deliver_generation(hook, GEN, tmp_path / "v.mp4", chunk_size=64 * 1024)
    assert list(tmp_path.iterdir()) == []
    assert api.file_gets == 1


def test_body_shorter_than_content_length_every_time_fails_after_attempts(hook, api, tmp_path):
    api.plan = [announce(len(DATA) + 10)] * 3
    with pytest.raises(DeliveryError) as info:
        deliver_generation(hook, GEN, tmp_path / "v.mp4", max_attempts=3)
    assert info.value.disposition.task_retry
    assert "after 3 attempt(s)" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    assert api.file_gets == 3


def test_not_an_mp4_fails_at_once_and_leaves_nothing(hook, requests_mock, tmp_path):
    api = FakeApi(requests_mock, b"<html>" + b"x" * 5000)
    with pytest.raises(PermanentDeliveryError, match="not an MP4"):
        deliver_generation(hook, GEN, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []
    assert api.file_gets == 1


def test_signature_is_checked_across_tiny_first_chunks(hook, requests_mock, tmp_path):
    small = mp4_bytes(3000)
    FakeApi(requests_mock, small)
    result = deliver_generation(hook, GEN, tmp_path / "v.mp4", chunk_size=3)  # 'ftyp' straddles chunks
    assert result.sha256 == sha(small) and (tmp_path / "v.mp4").read_bytes() == small
    FakeApi(requests_mock, b"\x00\x00\x00\x18moov" + small)
    with pytest.raises(PermanentDeliveryError):
        deliver_generation(hook, GEN, tmp_path / "w.mp4", chunk_size=3)


# ====================================================================================== resumption
def test_expired_url_is_refetched_then_succeeds(hook, api, tmp_path):
    api.plan = [forbidden]
    result = deliver_generation(hook, GEN, tmp_path / "v.mp4")
    assert api.status_gets == 2
    assert api.file_ranges == [None, None]
    assert result.attempts == 2
    assert (tmp_path / "v.mp4").read_bytes() == DATA


def test_dropped_stream_resumes_with_range(hook, api, tmp_path):
    chunk = 64 * 1024
    api.plan = [drop_after(4 * chunk)]
    result = deliver_generation(hook, GEN, tmp_path / "v.mp4", chunk_size=chunk)
    assert api.file_ranges == [None, f"bytes={4 * chunk}-"]
    assert api.status_gets == 2  # a fresh URL for the resumed download
    assert result.sha256 == sha(DATA) and result.size == len(DATA)
    assert (tmp_path / "v.mp4").read_bytes() == DATA


def test_dropped_twice_resumes_twice(hook, api, tmp_path):
    chunk = 32 * 1024
    api.plan = [drop_after(3 * chunk), drop_after(5 * chunk)]
    result = deliver_generation(hook, GEN, tmp_path / "v.mp4", chunk_size=chunk)
    assert api.file_ranges == [None, f"bytes={3 * chunk}-", f"bytes={8 * chunk}-"]
    assert result.sha256 == sha(DATA) and result.attempts == 3


def test_server_ignoring_range_restarts_from_zero(hook, api, tmp_path):
    chunk = 64 * 1024
    api.plan = [drop_after(2 * chunk), serve_full]
    result = deliver_generation(hook, GEN, tmp_path / "v.mp4", chunk_size=chunk)
    assert api.file_ranges == [None, f"bytes={2 * chunk}-"]
    assert result.sha256 == sha(DATA) and result.size == len(DATA)
    assert (tmp_path / "v.mp4").read_bytes() == DATA


def test_content_range_at_wrong_offset_restarts(hook, api, tmp_path):
    chunk = 64 * 1024
    api.plan = [drop_after(2 * chunk), wrong_range]
    result = deliver_generation(hook, GEN, tmp_path / "v.mp4", chunk_size=chunk)
    # a 206 from byte 0 is taken like an ignored Range: the body is used from byte 0, no third request
    assert api.file_ranges == [None, f"bytes={2 * chunk}-"]
    assert (tmp_path / "v.mp4").read_bytes() == DATA
    assert result.attempts == 2


def test_exhausted_attempts_name_generation_destination_and_cause(hook, api, tmp_path):
    api.plan = [forbidden] * 4
    target = tmp_path / "v.mp4"
    with pytest.raises(DeliveryError) as info:
        deliver_generation(hook, GEN, target, max_attempts=4)
    message = str(info.value)
    assert GEN in message and f"file://{target}" in message
    assert "after 4 attempt(s)" in message and "VideoUrlExpiredError" in message and "expired" in message
    assert SIGNATURE not in message
    assert api.status_gets == 4
    assert list(tmp_path.iterdir()) == []


def test_resume_after_partial_write_cleans_temp_on_final_failure(hook, api, tmp_path):
    api.plan = [drop_after(100_000), forbidden, forbidden]
    with pytest.raises(DeliveryError):
        deliver_generation(hook, GEN, tmp_path / "v.mp4", max_attempts=3)
    assert list(tmp_path.iterdir()) == []


# ======================================================================================= render state
def test_pending_render_is_a_clear_retryable_error(hook, api, tmp_path):
    api.status = {"status": "generating"}
    with pytest.raises(RenderNotCompletedError, match="'generating'") as info:
        deliver_generation(hook, GEN, tmp_path / "v.mp4")
    assert info.value.disposition.task_retry
    assert api.file_gets == 0 and list(tmp_path.iterdir()) == []


def test_failed_render_is_permanent(hook, api, tmp_path):
    api.status = {"status": "error", "error": {"name": "RenderError", "message": "worker crashed"}}
    with pytest.raises(RenderNotCompletedError, match="RenderError: worker crashed") as info:
        deliver_generation(hook, GEN, tmp_path / "v.mp4")
    assert not info.value.disposition.task_retry


def test_unknown_generation_is_permanent(hook, requests_mock, tmp_path):
    requests_mock.get(f"{BASE}/video/generations", status_code=404, json={"message": "not found"})
    with pytest.raises(GenerationNotFoundError) as info:
        deliver_generation(hook, GEN, tmp_path / "v.mp4")
    assert not info.value.disposition.task_retry
    assert list(tmp_path.iterdir()) == []


# ===================================================================================== idempotency
def test_rerun_with_same_bytes_is_skipped_and_untouched(hook, api, tmp_path, caplog):
    target = tmp_path / "v.mp4"
    deliver_generation(hook, GEN, target)
    os.utime(target, (1_000_000_000, 1_000_000_000))
    inode = target.stat().st_ino
    with caplog.at_level(logging.INFO, logger="airflow_provider_magicvideo.delivery"):
        again = deliver_generation(hook, GEN, target)
    assert again.skipped is True and again.sha256 == sha(DATA) and again.size == len(DATA)
    assert target.stat().st_mtime == 1_000_000_000 and target.stat().st_ino == inode
    assert "already delivered" in caplog.text
    assert leftovers(tmp_path) == []


def test_if_different_replaces_other_content(hook, api, tmp_path):
    target = tmp_path / "v.mp4"
    target.write_bytes(mp4_bytes(len(DATA), seed=2))  # same size, other bytes
    result = deliver_generation(hook, GEN, target)
    assert result.skipped is False
    assert target.read_bytes() == DATA


def test_overwrite_never_keeps_existing_without_downloading(hook, api, tmp_path):
    target = tmp_path / "v.mp4"
    old = mp4_bytes(5000, seed=3)
    target.write_bytes(old)
    result = deliver_generation(hook, GEN, target, overwrite="never")
    assert result.skipped is True and result.size == 5000 and result.sha256 == sha(old)
    assert target.read_bytes() == old
    assert (api.status_gets, api.file_gets) == (0, 0)


def test_overwrite_never_writes_when_absent(hook, api, tmp_path):
    result = deliver_generation(hook, GEN, tmp_path / "v.mp4", overwrite="never")
    assert result.skipped is False and (tmp_path / "v.mp4").read_bytes() == DATA


def test_overwrite_always_rewrites_identical_content(hook, api, tmp_path):
    target = tmp_path / "v.mp4"
    target.write_bytes(DATA)
    os.utime(target, (1_000_000_000, 1_000_000_000))
    result = deliver_generation(hook, GEN, target, overwrite="always")
    assert result.skipped is False
    assert target.stat().st_mtime != 1_000_000_000
    assert target.read_bytes() == DATA


# ====================================================================================== destinations
def test_folder_destination_is_rejected(hook, api, tmp_path):
    with pytest.raises(PermanentDeliveryError, match="folder"):
        deliver_generation(hook, GEN, tmp_path)
    with pytest.raises(PermanentDeliveryError, match="folder"):
        as_destination(f"file://{tmp_path}/")
    assert api.status_gets == 0


def test_unwritable_destination_is_permanent(hook, api, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermanentDeliveryError) as info:
        deliver_generation(hook, GEN, blocker / "v.mp4")  # parent is a file
    assert not info.value.disposition.task_retry


def test_bad_arguments(hook, tmp_path):
    with pytest.raises(ValueError, match="overwrite"):
        deliver_generation(hook, GEN, tmp_path / "v.mp4", overwrite="sometimes")  # type: ignore[arg-type]
    with pytest.raises(PermanentDeliveryError):
        as_destination("  ")


def test_uri_and_redaction_helpers():
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    assert str_uri(ObjectStoragePath("s3://bucket/a/b.mp4", conn_id="aws_x")) == "s3://bucket/a/b.mp4"
    assert strip_signature("GET https://cdn/x.mp4?X-Amz-Date=1&X-Amz-Signature=abc failed") == \
        "GET https://cdn/x.mp4?<redacted> failed"


# ================================================================================= constant memory
class _BigVideoHandler(BaseHTTPRequestHandler):
    """Status endpoint + a generated MP4 of ``server.size`` bytes, streamed in 1 MiB writes."""

    block = mp4_bytes(1 << 20, seed=9)

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        server: Any = self.server
        if self.path.startswith("/v2/video/generations"):
            body = json.dumps({"id": GEN, "status": "completed", "video": {
                "url": f"http://127.0.0.1:{server.server_port}/files/{GEN}.mp4?X-Amz-Signature=x"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(server.size))
        self.end_headers()
        for piece in generated(server.size, self.block):
            self.wfile.write(piece)


def generated(size: int, block: bytes) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        piece = block[: size - sent]
        sent += len(piece)
        yield piece


def test_constant_memory_for_a_200_mb_video(magicvideo_conn, tmp_path):
    size = 200 * 1024 * 1024
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BigVideoHandler)
    server.size = size  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        magicvideo_conn(f"http://127.0.0.1:{server.server_port}/v2")
        hook = MagicVideoHook()
        deliver_generation(hook, GEN, tmp_path / "warmup.mp4", overwrite="never")  # imports, pools
        (tmp_path / "warmup.mp4").unlink()
        expected = hashlib.sha256()
        for piece in generated(size, _BigVideoHandler.block):
            expected.update(piece)
        with RssPeak() as rss:
            result = deliver_generation(hook, GEN, tmp_path / "big.mp4")
        hook.close()
    finally:
        server.shutdown()
        server.server_close()
    assert result.size == size and (tmp_path / "big.mp4").stat().st_size == size
    assert result.sha256 == expected.hexdigest()
    assert rss.growth < 64 * 1024 * 1024, f"RSS grew by {rss.growth / 2**20:.1f} MiB"


# ================================================================================ real emulator
def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (160, 120), (40, 200, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def rendered(magicvideo_emulator: Any, magicvideo_conn: Any) -> Iterator[tuple[MagicVideoHook, str]]:
    """A completed emulator render: (hook, generation id)."""
    magicvideo_conn(magicvideo_emulator.base_url)
    hook = MagicVideoHook()
    generation = hook.submit(image=png_bytes(), template="Thailand Street")
    hook.wait_for_generation(generation.id, poll_interval=1, timeout=60)
    yield hook, generation.id
    hook.close()


@pytest.mark.integration
def test_emulator_render_to_file(rendered, tmp_path):
    hook, generation_id = rendered
    target = tmp_path / "renders" / "clip.mp4"
    result = deliver_generation(hook, generation_id, f"file://{target}")
    data = target.read_bytes()
    assert data[4:8] == b"ftyp"
    assert result.size == len(data) and result.sha256 == sha(data)
    assert deliver_generation(hook, generation_id, f"file://{target}").skipped is True


@pytest.mark.integration
def test_emulator_render_with_expired_url_still_delivers(magicvideo_emulator, rendered, tmp_path):
    hook, generation_id = rendered
    magicvideo_emulator.set_faults(url_expiry=1)
    old_url = hook.get_generation(generation_id).video_url
    time.sleep(2.1)
    from airflow_provider_magicvideo.exceptions import VideoUrlExpiredError

    with pytest.raises(VideoUrlExpiredError):
        hook.open_video(old_url)
    result = deliver_generation(hook, generation_id, tmp_path / "late.mp4")
    assert (tmp_path / "late.mp4").read_bytes()[4:8] == b"ftyp"
    assert result.size > 1000


@pytest.mark.integration
def test_emulator_render_to_moto_s3(rendered, s3_endpoint):  # noqa: F811
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    hook, generation_id = rendered
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="campaigns")
    destination = ObjectStoragePath("s3://campaigns/2026-01-01/sku-42.mp4", conn_id="aws_test")
    result = deliver_generation(hook, generation_id, destination)
    assert result.uri == "s3://campaigns/2026-01-01/sku-42.mp4"

    obj = client.get_object(Bucket="campaigns", Key="2026-01-01/sku-42.mp4")
    body = obj["Body"].read()
    assert body[4:8] == b"ftyp"
    assert sha(body) == result.sha256 and len(body) == result.size
    assert obj["ContentType"] == "video/mp4"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="campaigns").get("Contents", [])]
    assert keys == ["2026-01-01/sku-42.mp4"]  # no .part- leftovers

    again = deliver_generation(hook, generation_id, destination)
    assert again.skipped is True and again.sha256 == result.sha256


@pytest.mark.integration
def test_missing_bucket_is_a_permanent_destination_error(rendered, s3_endpoint):  # noqa: F811
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    hook, generation_id = rendered
    with pytest.raises(DeliveryError) as info:
        deliver_generation(hook, generation_id, ObjectStoragePath("s3://no-such-bucket/x.mp4", conn_id="aws_test"))
    assert not info.value.disposition.task_retry, info.value


class BrokenChunkedBody(DroppingBody):
    """A body whose transfer encoding breaks after ``data`` (what requests reports as ChunkedEncodingError)."""

    def readinto(self, b: Any) -> int:
        n = self._buf.readinto(b)
        if not n:
            raise requests.exceptions.ChunkedEncodingError("Connection broken: InvalidChunkLength")
        return n


def test_broken_chunked_encoding_resumes_with_range(hook, api, tmp_path):
    def broken(api: FakeApi, request: Any, start: int) -> Any:
        resp = serve(api, request, start)
        resp.raw._fp = BrokenChunkedBody(api.data[start:start + 200_000])
        return resp

    api.plan = [broken]
    result = deliver_generation(hook, GEN, tmp_path / "v.mp4", chunk_size=50_000)
    assert api.file_ranges == [None, "bytes=200000-"]
    assert result.attempts == 2 and (tmp_path / "v.mp4").read_bytes() == DATA


@pytest.mark.integration
def test_failed_s3_delivery_keeps_the_old_object_and_leaves_no_upload(rendered, s3_endpoint, monkeypatch):  # noqa: F811
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    hook, generation_id = rendered
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="keep")
    client.put_object(Bucket="keep", Key="v.mp4", Body=b"old video")
    real_open = hook.open_video

    def dropping_open(url: str, *, offset: int = 0) -> Any:
        stream = real_open(url, offset=offset)
        real_chunks = stream.chunks

        def broken(size: int) -> Iterator[bytes]:
            yield next(real_chunks(4096))
            raise ApiConnectionError("video download: connection broken")

        stream.chunks = broken  # type: ignore[method-assign]
        return stream

    monkeypatch.setattr(hook, "open_video", dropping_open)
    with pytest.raises(DeliveryError, match="after 2 attempt"):
        deliver_generation(hook, generation_id, ObjectStoragePath("s3://keep/v.mp4", conn_id="aws_test"),
                           max_attempts=2)
    assert client.get_object(Bucket="keep", Key="v.mp4")["Body"].read() == b"old video"
    assert [o["Key"] for o in client.list_objects_v2(Bucket="keep")["Contents"]] == ["v.mp4"]
    assert client.list_multipart_uploads(Bucket="keep").get("Uploads", []) == []
