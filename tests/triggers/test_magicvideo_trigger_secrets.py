"""The API key never reaches a trigger's event or log, even when the server echoes it back (hardening item 3).

On the old code (f66ac56) the error event's message copied the server's text: a 401 body
``{"message": "Invalid key Bearer <key>"}`` put the key into the event, and from there into the task's error.
"""

from __future__ import annotations

import base64
import json
import logging

import pytest

from tests.conftest import TEST_API_KEY
from tests.triggers.test_magicvideo_trigger import STATUS_URL, make_trigger, run_all

BASE64_KEY = base64.b64encode(f"Bearer {TEST_API_KEY}".encode()).decode()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"message": f"Invalid key Bearer {TEST_API_KEY}", "statusCode": "401"}),
        (400, {"message": "Body validation error!", "meta": [{"path": ["generation_id"], "message": TEST_API_KEY}]}),
        (403, {"message": f"key {TEST_API_KEY} has no credits ({BASE64_KEY})"}),
        (502, f"<html>upstream said Authorization: Bearer {TEST_API_KEY}</html>"),
        (200, f"not json: {TEST_API_KEY}"),
    ],
)
async def test_key_echoed_by_the_server_is_in_no_event_or_log(mocked, fake_api_conn, fake_clock, caplog, status, body):
    kwargs = {"payload": body} if isinstance(body, dict) else {"body": body}
    mocked.get(STATUS_URL, status=status, repeat=True, **kwargs)
    caplog.set_level(logging.DEBUG)
    events = await run_all(make_trigger(max_consecutive_poll_failures=0))
    assert [e["status"] for e in events] == ["error"]
    seen = json.dumps(events) + "\n".join(r.getMessage() for r in caplog.records)
    assert TEST_API_KEY not in seen
    assert BASE64_KEY not in seen
    assert "***" in events[0]["message"] or status in (200, 502)  # the echo is there, masked
