"""S3-style presigned file URLs: HMAC-SHA256 over path, date and expiry with the emulator's secret."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from enum import Enum
from urllib.parse import quote, urlencode

AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
CREDENTIAL_ID = "EMULATOR0MAGICVIDEO0"


class Verdict(Enum):
    OK = "ok"
    MISSING = "missing"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"


def _signature(secret: bytes, path: str, amz_date: str, expires: int) -> str:
    message = f"{path}\n{amz_date}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_url(
    secret: bytes, base: str, path: str, filename: str, expires: int, now: float | None = None
) -> str:
    """Return ``base + path`` with a query string shaped like the real CDN's presigned URL."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    amz_date = stamp.strftime(AMZ_DATE_FORMAT)
    params = {
        "response-content-disposition": f"attachment; filename={filename}",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{CREDENTIAL_ID}/{stamp:%Y%m%d}/local/s3/aws4_request",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
        "X-Amz-Signature": _signature(secret, path, amz_date, expires),
    }
    return f"{base.rstrip('/')}{path}?{urlencode(params, quote_via=quote)}"


def verify(secret: bytes, path: str, query: dict[str, str], now: float | None = None) -> Verdict:
    """Check a presigned request; expiry is only reported for an authentic signature, as S3 does."""
    try:
        amz_date = query["X-Amz-Date"]
        expires = int(query["X-Amz-Expires"])
        signature = query["X-Amz-Signature"]
    except (KeyError, ValueError):
        return Verdict.MISSING
    if not hmac.compare_digest(signature, _signature(secret, path, amz_date, expires)):
        return Verdict.BAD_SIGNATURE
    try:
        signed_at = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return Verdict.BAD_SIGNATURE
    if (time.time() if now is None else now) > signed_at + expires:
        return Verdict.EXPIRED
    return Verdict.OK
