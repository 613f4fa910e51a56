"""HTTP failures → provider errors: the one place that reads ``requests``/``aiohttp`` exceptions and error bodies.

* A transport failure becomes :class:`ConnectFailedError` when the request provably never left (refused,
  DNS, connect timeout, TLS handshake, an unusable URL or header) and :class:`ApiConnectionError` otherwise.
* An error answer becomes the :class:`ApiStatusError` subclass of its status.
* Everything the server sent is untrusted: messages are cut short and redacted of ``secrets`` before they
  reach an exception, and mapped errors are raised with no ``__cause__``/``__context__`` chain, since
  library exceptions may quote a URL or a header.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from airflow_provider_magicvideo.exceptions import (
    ApiConnectionError,
    ApiStatusError,
    AuthenticationError,
    ConnectFailedError,
    GenerationNotFoundError,
    InsufficientCreditsError,
    RateLimitError,
    RequestValidationError,
    ServerError,
    UnexpectedResponseError,
)
from airflow_provider_magicvideo.redaction import redact, truncate

_STATUS_CLASSES: dict[int, type[ApiStatusError]] = {
    400: RequestValidationError,
    401: AuthenticationError,
    403: InsufficientCreditsError,
    404: GenerationNotFoundError,
    429: RateLimitError,
}

# requests: failures raised before a byte of the request was written.
_NOT_SENT_SYNC: tuple[type[BaseException], ...] = (
    requests.ConnectTimeout, requests.exceptions.SSLError, requests.exceptions.ProxyError,
    requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema, requests.exceptions.InvalidProxyURL,
)
_NOT_SENT_CAUSES: tuple[type[BaseException], ...] = (socket.gaierror, ConnectionRefusedError)


def _connection_error(not_sent: bool, exc: BaseException, action: str, client_request_id: str | None
                      ) -> ApiConnectionError:
    # Only the exception's type: its text can quote the URL (a presigned signature) or a header.
    if not_sent:
        return ConnectFailedError(f"AI/ML API {action}: could not connect ({type(exc).__name__})",
                                  client_request_id=client_request_id)
    return ApiConnectionError(f"AI/ML API {action}: no answer ({type(exc).__name__})",
                              client_request_id=client_request_id)


def connection_error_sync(exc: BaseException, action: str, client_request_id: str | None = None
                          ) -> ApiConnectionError:
    """Classify a ``requests``/``urllib3`` failure: did the request possibly reach the server?"""
    import urllib3.exceptions as u3

    not_sent = isinstance(exc, _NOT_SENT_SYNC)
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack and not not_sent:
        cur = stack.pop()
        if not isinstance(cur, BaseException) or id(cur) in seen:
            continue
        seen.add(id(cur))
        not_sent = isinstance(cur, (*_NOT_SENT_CAUSES, u3.NewConnectionError, u3.ConnectTimeoutError))
        stack.extend([getattr(cur, "reason", None), cur.__cause__, cur.__context__, *cur.args])
    return _connection_error(not_sent, exc, action, client_request_id)


def connection_error_async(exc: BaseException, action: str, client_request_id: str | None = None
                           ) -> ApiConnectionError:
    """Classify an ``aiohttp`` failure (or a timeout) the same way."""
    # Imported here, not with the module: only the triggerer uses aiohttp, and every task process that parses
    # a DAG imports this module (aiohttp costs it ~0.17 s of CPU).
    import aiohttp

    # ClientConnectorError covers refused, DNS, proxy and certificate/TLS failures while connecting.
    not_sent = (aiohttp.ClientConnectorError, aiohttp.InvalidURL,
                getattr(aiohttp, "ConnectionTimeoutError", aiohttp.InvalidURL))
    return _connection_error(isinstance(exc, not_sent), exc, action, client_request_id)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` when absent or garbage."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000" parses naive; it means UTC, not local time
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None


def _problems(body: Mapping[str, Any]) -> list[str]:
    """The API's validation detail (zod-style issue lists, or a list message) as "field: problem"."""
    problems: list[str] = []
    for key in ("meta", "errors", "issues", "details"):
        items = body.get(key)
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, Mapping):
                problems.append(str(item))
                continue
            where = item.get("path") or item.get("field") or item.get("loc")
            if isinstance(where, list):
                where = ".".join(str(p) for p in where if p != "body")
            text = item.get("message") or item.get("msg") or json.dumps(dict(item), default=str)
            problems.append(f"{where}: {text}" if where else str(text))
    message = body.get("message")
    if isinstance(message, list):  # NestJS-style: a list of strings
        problems.extend(str(m) for m in message)
    return problems


def error_from_response(status_code: int, body_text: str, headers: Mapping[str, str] | None = None, *,
                        action: str = "request", secrets: Iterable[str] = (),
                        client_request_id: str | None = None) -> ApiStatusError:
    """The typed error for an HTTP error answer; accepts a missing, non-JSON or odd body."""
    secrets = tuple(secrets)
    headers = headers if headers is not None and not isinstance(headers, dict) else {
        k.lower(): v for k, v in (headers or {}).items()}

    def clean(text: object) -> str:
        return redact(truncate(" ".join(str(text).split()), 200), secrets)

    try:
        body: Any = json.loads(body_text) if body_text else None
    except ValueError:
        body = None
    body = body if isinstance(body, Mapping) else {}
    raw_message = body.get("message")
    if isinstance(raw_message, str):
        api_message: str | None = clean(raw_message)
    else:
        api_message = clean(body_text) if body_text and not body else None
    request_id = body.get("requestId") or headers.get("x-request-id") or headers.get("x-inference-id")
    cls = _STATUS_CLASSES.get(status_code) or (ServerError if status_code >= 500 else ApiStatusError)
    kwargs: dict[str, Any] = dict(
        status_code=status_code, api_message=api_message, client_request_id=client_request_id,
        request_id=clean(request_id)[:100] if request_id else None,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )
    message = f"AI/ML API {action} failed with HTTP {status_code}: {api_message or 'no message'}"
    if cls is GenerationNotFoundError and action == "submit":
        message += " (the submit endpoint itself was not found: check the connection's host / base URL)"
    if cls is RequestValidationError:
        return RequestValidationError(message, problems=[clean(p) for p in _problems(body)][:20], **kwargs)
    return cls(message, **kwargs)


def parse_json(text: str, action: str, *, request_id: str | None = None, secrets: Iterable[str] = ()) -> Any:
    """The JSON body of a 2xx answer, or :class:`UnexpectedResponseError` (a failed poll, never a success)."""
    try:
        return json.loads(text)
    except ValueError:
        snippet = redact(truncate(" ".join(text.split()), 120), tuple(secrets))
        raise UnexpectedResponseError(f"AI/ML API {action} answered with a body that is not JSON: {snippet!r}",
                                      request_id=request_id) from None
