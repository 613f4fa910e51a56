"""Error bodies in the shapes the real API (JSON) and its S3-style CDN (XML) use."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from starlette.responses import Response

UNAUTHORIZED = (
    "This request requires a valid API key. Provide it in the Authorization header as "
    "'Bearer <YOUR_AIMLAPI_KEY>'; keys are managed at https://aimlapi.com/app/keys/"
)
NO_CREDITS = (
    "You've run out of credits. Please top up your balance or update your payment method to continue: "
    "https://aimlapi.com/app/billing/"
)
SERVER_ERRORS = {
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
    504: "Gateway timeout",
}


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status, headers, media_type="application/json")


def api_error(
    status: int, message: str, path: str, meta: Any = None, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, Any] = {
        "message": message,
        "path": path,
        "requestId": str(uuid.uuid4()),
        "statusCode": str(status),
        "timestamp": timestamp(),
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
