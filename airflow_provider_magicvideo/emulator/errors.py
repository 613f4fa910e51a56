"""Error bodies in the shapes the real API (JSON) and its S3-style CDN (XML) use, with the documented texts.

Texts from the AI/ML API docs, ``docs/errors-and-messages/errors-with-status-code-{4xx,5xx}.md``. The
502 row of the docs reads ``"Bad Gateway`'`` (a stray backtick and quote); the emulator sends ``Bad Gateway``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from starlette.responses import Response

UNAUTHORIZED = (
    "This request requires a valid API key. You can create a new API key on the Billing page: "
    "https://aimlapi.com/app/keys"
)
NO_CREDITS = (
    "You've run out of credits. Please top up your balance or update your payment method to continue: "
    "https://aimlapi.com/app/billing/"
)
TOO_MANY_REQUESTS = "Too Many Requests"
BODY_VALIDATION = "Body validation error!"
QUERY_VALIDATION = "Query validation error!"
SERVER_ERRORS = {
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service unavailable",
    504: "Generation timeout",
}


def timestamp(epoch: float | None = None) -> str:
    stamp = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status, headers, media_type="application/json")


def api_error(
    status: int,
    message: str,
    path: str,
    meta: Any = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    now: float | None = None,
) -> Response:
    """``{message, path, requestId, statusCode (a string), timestamp}``, plus ``meta`` (validation issues)."""
    body: dict[str, Any] = {
        "message": message,
        "path": path,
        "requestId": request_id or str(uuid.uuid4()),
        "statusCode": str(status),
        "timestamp": timestamp(now),
    }
    if meta is not None:
        body["meta"] = meta
    return json_response(body, status, headers)


def s3_error(status: int, code: str, message: str, resource: str) -> Response:
    request_id = uuid.uuid4().hex[:16].upper()
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>"
    )
    return Response(xml, status, media_type="application/xml")
