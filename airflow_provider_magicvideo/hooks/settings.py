"""What a hook takes from its Airflow connection, validated before any request is sent.

Every number is checked here (finite, positive, within bounds) and every string that ends up in a URL or
a header (host, port, API key), so a bad connection fails with :class:`ConnectionConfigError` naming the
field, never halfway through a submit that may already have been billed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_magicvideo import __version__
from airflow_provider_magicvideo.exceptions import ConnectionConfigError, InvalidInputError
from airflow_provider_magicvideo.redaction import MIN_SECRET_LENGTH

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection

DEFAULT_BASE_URL = "https://api.aimlapi.com/v2"
GENERATIONS_PATH = "/video/generations"
LOGS_PATH = "/logs"  # under the /v2 base
BALANCE_PATH = "/v1/billing/balance"  # beside it
#: How long an ambiguous submit is looked up in the usage log by default: longer than its ingestion delay,
#: about one render time.
DEFAULT_RECONCILE_WINDOW = 180.0
USER_AGENT = f"airflow-provider-magicvideo/{__version__}"
#: The shortest poll interval accepted anywhere (operator, sensor, trigger, connection extra): a render takes
#: minutes, and a tighter loop only burns the triggerer's CPU and the account's rate limit.
MIN_POLL_INTERVAL = 1.0
#: Default cap on a downloaded MP4 (a 608x1080 video is a few MiB): an endless body becomes a clear error.
DEFAULT_MAX_VIDEO_BYTES = 500 * 1024 * 1024
_LOOPBACK = ("localhost", "127.", "[::1]", "::1")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def normalize_base_url(host: str | None, *, schema: str | None = None, port: int | None = None) -> str:
    """Connection host → API base URL ending in ``/v2``.

    ``None``/empty gives the public API. A host without scheme gets ``schema`` when it is http/https,
    else https (http for loopback hosts, where the emulator runs). A host without a path gets ``/v2``.
    Credentials in the host are refused: they would replace the Bearer key with Basic auth.
    """
    host = (host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        scheme = schema if schema in ("http", "https") else ("http" if host.startswith(_LOOPBACK) else "https")
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    shown = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"[:200]
    if parts.username is not None or parts.password is not None:
        raise ConnectionConfigError(f"host: {shown!r} contains a user name or password; remove it (the API "
                                    "key belongs in the password field).")
    try:
        host_port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ConnectionConfigError(f"host: {shown!r} has an invalid port (1-65535).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or _HEADER_UNSAFE.search(host) or " " in host:
        raise ConnectionConfigError(f"host: {shown!r} is not an http(s) address. Leave it empty for "
                                    f"{DEFAULT_BASE_URL}.")
    netloc = parts.netloc
    if port and host_port is None:  # a port in the host wins over the connection's port field
        if not 0 < int(port) < 65536:
            raise ConnectionConfigError(f"port: {port!r} is not a TCP port (1-65535).")
        if int(port) != _DEFAULT_PORTS[parts.scheme]:  # "API port" 443 with an https host: nothing to add
            netloc = f"{netloc}:{int(port)}"
    path = parts.path.rstrip("/") or "/v2"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def check_api_key(key: str | None, conn_id: str) -> str:
    """The stripped key, or :class:`ConnectionConfigError` (never echoing the key)."""
    key = (key or "").strip()
    if not key:
        raise ConnectionConfigError(f"Connection {conn_id!r} has no API key. Put the AI/ML API key in the "
                                    "connection's password ('API key') field.")
    if _HEADER_UNSAFE.search(key) or " " in key:
        raise ConnectionConfigError(f"password: the API key of connection {conn_id!r} contains spaces, line breaks "
                                    "or control characters; copy the key again.")
    if len(key) < MIN_SECRET_LENGTH:  # shorter keys could not be redacted reliably from server texts
        raise ConnectionConfigError(f"password: the API key of connection {conn_id!r} is too short to be an AI/ML "
                                    "API key; copy the key again.")
    try:
        key.encode("latin-1")
        sendable = True
    except UnicodeEncodeError:  # its text quotes the key: raise outside the handler, so no __context__ keeps it
        sendable = False
    if not sendable:
        raise ConnectionConfigError(f"password: the API key of connection {conn_id!r} contains characters that "
                                    "cannot be sent in an HTTP header; copy the key again.")
    return key


def positive_number(value: Any, name: str, *, minimum: float = 0.0, maximum: float = 86_400.0,
                    integer: bool = False, allow_zero: bool = False,
                    error: type[InvalidInputError] = ConnectionConfigError) -> Any:
    """``value`` as a finite number in range (> 0 unless ``allow_zero``), or ``error`` naming ``name``.

    The upper bound matters too: a timeout of 1e300 s overflows the socket layer after a request was sent.
    """
    shown = repr(value)[:60]
    try:
        number = float(value)
        if isinstance(value, bool) or not math.isfinite(number):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise error(f"{name}: {shown} is not a finite number.") from None
    if integer and number != int(number):
        raise error(f"{name}: {shown} must be a whole number.")
    low_ok = number >= minimum and (number > 0 or allow_zero)
    if not low_ok or number > maximum:
        low = f"at least {minimum:g}" if minimum > 0 else ("0 or more" if allow_zero else "greater than 0")
        raise error(f"{name}: {shown} must be {low} and at most {maximum:g}.")
    return int(number) if integer else number


def _extra(extra: Mapping[str, Any], name: str, default: Any, **rules: Any) -> Any:
    value = extra.get(name)
    return default if value in (None, "") else positive_number(value, f"extra.{name}", **rules)


def _flag(extra: Mapping[str, Any], name: str) -> bool:
    value = extra.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no", ""):
        return value.strip().lower() in ("true", "1", "yes")
    raise ConnectionConfigError(f"extra.{name}: {repr(value)[:60]} is not true or false.")


@dataclass(frozen=True)
class ApiSettings:
    """What a hook needs from its Airflow connection. The key is kept out of ``repr``."""

    base_url: str
    api_key: str = field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_retries: int = 3
    poll_interval: float = 15.0
    wait_timeout: float = 1000.0
    max_media_bytes: int | None = None
    max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES
    #: The one opt-in for http:// and loopback video URLs (the emulator); off for the real API.
    allow_insecure_video_urls: bool = False
    #: Seconds an ambiguous submit is looked up in the usage log (0: fail at once, as without the log).
    reconcile_window: float = DEFAULT_RECONCILE_WINDOW

    @classmethod
    def from_connection(cls, conn: Connection, extra: Mapping[str, Any] | None = None) -> ApiSettings:
        extra = conn.extra_dejson if extra is None else extra
        if not isinstance(extra, Mapping):
            raise ConnectionConfigError(f"extra: connection {conn.conn_id!r} has extras that are not a JSON object.")
        return cls(
            base_url=normalize_base_url(conn.host, schema=conn.schema, port=conn.port),
            api_key=check_api_key(conn.password, conn.conn_id),
            connect_timeout=_extra(extra, "connect_timeout", 10.0, maximum=600),
            read_timeout=_extra(extra, "timeout", 30.0, maximum=600),
            max_retries=_extra(extra, "max_retries", 3, integer=True, allow_zero=True, maximum=20),
            poll_interval=_extra(extra, "poll_interval", 15.0, minimum=MIN_POLL_INTERVAL, maximum=3600),
            wait_timeout=_extra(extra, "wait_timeout", 1000.0, maximum=7 * 86_400),
            max_media_bytes=_extra(extra, "max_media_bytes", None, integer=True, maximum=2**31),
            max_video_bytes=_extra(extra, "max_video_bytes", DEFAULT_MAX_VIDEO_BYTES, integer=True, maximum=2**40),
            allow_insecure_video_urls=_flag(extra, "allow_insecure_video_urls"),
            reconcile_window=_extra(extra, "reconcile_window", DEFAULT_RECONCILE_WINDOW, allow_zero=True,
                                    maximum=3600),
        )

    @property
    def generations_url(self) -> str:
        return self.base_url + GENERATIONS_PATH

    @property
    def logs_url(self) -> str:
        return self.base_url + LOGS_PATH

    @property
    def balance_url(self) -> str:
        root = self.base_url[: -len("/v2")] if self.base_url.endswith("/v2") else self.base_url
        return root + BALANCE_PATH

    @property
    def timeouts(self) -> tuple[float, float]:
        return self.connect_timeout, self.read_timeout
