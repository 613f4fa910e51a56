"""Constants and payload builders shared by the hook tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

BASE_URL = "https://api.magic.test/v2"
GENERATIONS_URL = f"{BASE_URL}/video/generations"
VIDEO_URL = (
    "https://cdn.magic.test/renders/gen-1.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Date=20250102T030405Z&X-Amz-Expires=600&X-Amz-Signature=deadbeef"
)
MP4_BYTES = b"\x00\x00\x00\x1cftypisom\x00\x00\x02\x00isomiso2mp41" + b"\x00\x00\x00\x48moov" + b"\x00" * 64
CLIENT_REQUEST_ID_RE = r"[A-Za-z0-9._:-]{1,128}"
HOOK_LOGGER = "tests.magicvideo.hook"


def payload(status: str = "queued", generation_id: str = "gen-1", **extra) -> dict:
    """A status/submit answer as the API sends it."""
    body: dict = {"id": generation_id, "status": status, **extra}
    if status == "completed" and "video" not in body:
        body["video"] = {"url": VIDEO_URL}
    if status == "error" and "error" not in body:
        body["error"] = {"name": "RenderError", "message": "the template could not be rendered"}
    return body


class FakeClock:
    """A wall clock that sleeping advances instantly (the hook's public ``clock`` and ``sleep``)."""

    def __init__(self, start: float = 1_000.0):
        self.now = start
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def attach(self, hook):
        hook.clock, hook.sleep = self.time, self.sleep
        return hook
