"""Issue 16, item 4 (SSRF from delivery, size cap) and the 206 part of item 8, through the public surface.

Every test drives :func:`deliver_generation` or :class:`MagicVideoDeliverOperator` with a real
:class:`MagicVideoHook` against the scripted ``hostile_server`` on 127.0.0.1 (status endpoint and, where a
video is served, the video). Every TCP connection the provider opens goes through
``urllib3.util.connection.create_connection``, which the ``connections`` fixture wraps to record the
address *before* connecting and to refuse (without connecting) anything but the hostile server, so a refused
address is never really contacted.

How each test fails on the old code (f66ac56): that ``delivery`` module fetched ``video.url`` with
``requests`` (``allow_redirects=True``, no URL check, no size cap, ``assert`` on 206), so the refused URLs
below were connected to (or failed as a retryable "no answer" after several attempts) instead of raising
``PermanentDeliveryError`` with zero connections; redirects were followed by the library; the endless body
was written to disk; the 206 raised ``AssertionError``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3.util.connection
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_magicvideo.delivery import deliver_generation
from airflow_provider_magicvideo.exceptions import PermanentDeliveryError
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.operators.deliver import MagicVideoDeliverOperator
from tests.security.hostile_server import HostileServer, Reply, json_reply, partial_content, redirect

GEN = "gen-ssrf-1"
SIGNATURE = "S1gnatureThatMustNotLeak0123"
QUERY = f"X-Amz-Date=20260101T000000Z&X-Amz-Expires=600&X-Amz-Signature={SIGNATURE}"
STATUS_PATH = "/v2/video/generations"
VIDEO = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2mp41" + bytes(range(256)) * 256


class Connections:
    """Every (host, port) the provider tried to connect to; only the hostile server is really reached."""

    def __init__(self, allowed_port: int) -> None:
        self.allowed = ("127.0.0.1", allowed_port)
        self.attempts: list[tuple[str, int]] = []

    def others(self) -> list[tuple[str, int]]:
        return [a for a in self.attempts if a != self.allowed]


@pytest.fixture
def connections(hostile_server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> Connections:
    seen = Connections(int(hostile_server.url.rsplit(":", 1)[1]))
    real = urllib3.util.connection.create_connection

    def counting(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address[0], int(address[1])
        seen.attempts.append((host, port))
        if (host, port) != seen.allowed:  # never really connect to anything else
            raise ConnectionRefusedError(111, "test: connection to a non-test address blocked")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counting)
    return seen


def serve_status(server: HostileServer, video_url: str) -> None:
    server.route("GET", STATUS_PATH, json_reply({"id": GEN, "status": "completed", "video": {"url": video_url}}))


@pytest.fixture
def hook_for(hostile_server: HostileServer, magicvideo_conn: Any) -> Iterator[Any]:
    hooks: list[MagicVideoHook] = []

    def make(**extra: Any) -> MagicVideoHook:
        magicvideo_conn(f"{hostile_server.url}/v2", max_retries=0, **extra)
        hooks.append(MagicVideoHook())
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


def no_sleep(seconds: float) -> None:
    pass


def assert_no_leak(exc: BaseException) -> None:
    text = str(exc)
    assert SIGNATURE not in text and "X-Amz-Signature" not in text and "X-Amz-Date" not in text, text


# ================================================================================ refused before connecting
@pytest.mark.parametrize(("url", "named"), [
    (f"http://169.254.169.254/latest/meta-data?{QUERY}", "169.254.169.254"),
    (f"https://169.254.169.254/latest/meta-data/iam/security-credentials/?{QUERY}", "169.254.169.254"),
    (f"http://10.1.2.3/files/v.mp4?{QUERY}", "10.1.2.3"),
    (f"https://10.0.0.7:8443/v.mp4?{QUERY}", "10.0.0.7"),
    ("file:///etc/passwd", "file"),
    ("javascript:alert(document.cookie)", "javascript"),
])
@pytest.mark.parametrize("allow_insecure", [False, True])
def test_internal_or_foreign_video_urls_are_refused_without_connecting(
        hostile_server, connections, hook_for, tmp_path, url, named, allow_insecure):
    # Old code: requests connected to 169.254.169.254 / 10.x (4 attempts per delivery) or raised
    # InvalidSchema wrapped as a retryable DeliveryError: either way no PermanentDeliveryError at once.
    serve_status(hostile_server, url)
    hook = hook_for(allow_insecure_video_urls=allow_insecure)
    with pytest.raises(PermanentDeliveryError) as info:
        deliver_generation(hook, GEN, tmp_path / "v.mp4", sleep=no_sleep)
    assert named in str(info.value)
    assert_no_leak(info.value)
    assert connections.others() == []  # zero connection attempts to the refused address
    assert hostile_server.count("GET", STATUS_PATH) == 1  # refused for good: no second attempt
    assert list(tmp_path.iterdir()) == []


def test_operator_fails_the_task_for_good_on_a_metadata_url(hostile_server, connections, hook_for, tmp_path):
    # Old code: the operator downloaded from the metadata address, retried, and never failed for good.
    serve_status(hostile_server, f"http://169.254.169.254/latest/meta-data?{QUERY}")
    hook_for(allow_insecure_video_urls=True)
    op = MagicVideoDeliverOperator(task_id="deliver", generation_id=GEN, destination=str(tmp_path / "v.mp4"))
    ctx = {"ti": SimpleNamespace(dag_id="d", task_id="deliver", run_id="r", map_index=-1, try_number=1,
                                 xcom_push=lambda key, value: None)}
    with pytest.raises(AirflowFailException, match=re.escape("169.254.169.254")) as info:
        op.execute(ctx)
    assert_no_leak(info.value)
    assert connections.others() == []
    assert list(tmp_path.iterdir()) == []


def test_loopback_is_refused_without_the_opt_in(hostile_server, connections, hook_for, tmp_path):
    # Old code: fetched the loopback service (the video below) and delivered it.
    hostile_server.route("GET", "/files/v.mp4", Reply(200, {"Content-Type": "video/mp4"}, VIDEO))
    serve_status(hostile_server, f"{hostile_server.url}/files/v.mp4?{QUERY}")
    hook = hook_for(allow_insecure_video_urls=False)
    with pytest.raises(PermanentDeliveryError, match=re.escape("127.0.0.1")) as info:
        deliver_generation(hook, GEN, tmp_path / "v.mp4", sleep=no_sleep)
    assert_no_leak(info.value)
    assert hostile_server.count("GET", "/files/v.mp4") == 0  # counted by the server: never requested
    assert list(tmp_path.iterdir()) == []


# ================================================================================================ redirects
def test_redirect_to_a_metadata_address_is_refused_before_the_second_hop(
        hostile_server, connections, hook_for, tmp_path):
    # Old code: requests followed the redirect and connected to 169.254.169.254.
    hostile_server.route("GET", "/files/v.mp4", redirect(f"http://169.254.169.254/latest/meta-data?{QUERY}"))
    serve_status(hostile_server, f"{hostile_server.url}/files/v.mp4?{QUERY}")
    hook = hook_for(allow_insecure_video_urls=True)
    with pytest.raises(PermanentDeliveryError, match=re.escape("169.254.169.254")) as info:
        deliver_generation(hook, GEN, tmp_path / "v.mp4", sleep=no_sleep)
    assert_no_leak(info.value)
    assert hostile_server.count("GET", "/files/v.mp4") == 1
    assert connections.others() == []
    assert list(tmp_path.iterdir()) == []


def test_more_than_five_redirects_are_refused(hostile_server, connections, hook_for, tmp_path):
    # Old code: requests followed up to 30 redirects, so hop 6 was requested.
    def hop(request: Any) -> Reply:
        n = int(request.path.rsplit("/", 1)[1])
        # "Connection: close" so the client never reuses a socket the server closes (a test-server artefact)
        return Reply(302, {"Location": f"/r/{n + 1}?{QUERY}", "Content-Length": "0", "Connection": "close"})

    hostile_server.route("GET", re.compile(r"/r/\d+"), handler=hop)
    serve_status(hostile_server, f"{hostile_server.url}/r/0?{QUERY}")
    hook = hook_for(allow_insecure_video_urls=True)
    with pytest.raises(PermanentDeliveryError, match="more than 5") as info:
        deliver_generation(hook, GEN, tmp_path / "v.mp4", sleep=no_sleep)
    assert_no_leak(info.value)
    video_paths = [r.path for r in hostile_server.requests if r.path.startswith("/r/")]
    assert video_paths == [f"/r/{n}" for n in range(6)]  # the first URL and 5 redirects, no more
    assert hostile_server.count("GET", STATUS_PATH) == 1
    assert list(tmp_path.iterdir()) == []


# ===================================================================================================== body
def test_an_endless_body_stops_at_max_video_bytes_and_leaves_nothing(hostile_server, connections, hook_for,
                                                                     tmp_path):
    # Old code: no cap, so the whole body was written to disk and delivered. (The body is "endless" for the
    # cap's purpose but bounded at 64 MiB, so the old code finishes and fails the assertion instead of hanging.)
    cap = 1 << 20
    chunk = VIDEO[:64] + b"\0" * (65536 - 64)
    body = itertools.chain([chunk], itertools.repeat(b"\0" * 65536, 1023))
    # chunked, no Content-Length: only the cap can stop it
    hostile_server.route("GET", "/files/v.mp4", Reply(200, {"Content-Type": "video/mp4"}, body))
    serve_status(hostile_server, f"{hostile_server.url}/files/v.mp4?{QUERY}")
    hook = hook_for(allow_insecure_video_urls=True, max_video_bytes=cap)
    with pytest.raises(PermanentDeliveryError) as info:
        deliver_generation(hook, GEN, tmp_path / "v.mp4", chunk_size=65536, sleep=no_sleep)
    assert "max_video_bytes" in str(info.value) and f"{cap:,}-byte limit" in str(info.value)
    assert_no_leak(info.value)
    assert hostile_server.count("GET", STATUS_PATH) == 1  # not retried
    assert list(tmp_path.iterdir()) == []


def test_an_announced_size_over_the_cap_is_refused_before_reading(hostile_server, connections, hook_for, tmp_path):
    # Old code: no cap; the 2 MiB video was delivered.
    big = VIDEO + b"\0" * (2 << 20)
    hostile_server.route("GET", "/files/v.mp4", Reply(200, {"Content-Type": "video/mp4"}, big))
    serve_status(hostile_server, f"{hostile_server.url}/files/v.mp4?{QUERY}")
    hook = hook_for(allow_insecure_video_urls=True, max_video_bytes=1 << 20)
    with pytest.raises(PermanentDeliveryError, match="max_video_bytes") as info:
        deliver_generation(hook, GEN, tmp_path / "v.mp4", sleep=no_sleep)
    assert_no_leak(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_206_to_a_request_without_range_is_delivered(hostile_server, connections, hook_for, tmp_path):
    # Old code: ``assert resp.status_code == 200`` for a non-ranged request -> AssertionError.
    hostile_server.route("GET", "/files/v.mp4", partial_content(VIDEO))
    serve_status(hostile_server, f"{hostile_server.url}/files/v.mp4?{QUERY}")
    hook = hook_for(allow_insecure_video_urls=True)
    result = deliver_generation(hook, GEN, tmp_path / "v.mp4", sleep=no_sleep)
    assert (tmp_path / "v.mp4").read_bytes() == VIDEO
    assert result.size == len(VIDEO) and result.attempts == 1
    (first,) = [r for r in hostile_server.requests if r.path == "/files/v.mp4"]
    assert first.header("Range") is None
