"""Decide whether the provider may fetch a video URL the API returned (the SSRF guard).

The API (or anything between it and the worker) chooses ``video.url``; the worker fetches it from inside the
deployment's network. :func:`check_video_url` refuses any URL that could reach something other than a public
web server, *before* connecting; :func:`follow_redirects` applies the same check to every redirect hop.

Rules (:func:`check_video_url`):

* Scheme ``https`` only; ``http`` too with ``allow_insecure``. Every other scheme (``file:``, ``javascript:``,
  ``ftp:``, ``data:``, ...) is refused always. No user info (``user:pw@``), no whitespace, control characters
  or backslashes anywhere in the URL, a valid port, a syntactically valid host name.
* Numeric hosts are read the way browsers and ``inet_aton`` read them (``2852039166``, ``0x7f000001``,
  ``0177.0.0.1``, ``127.1``), so a spelling cannot hide an address; the returned URL spells it dotted-quad.
* Names are resolved (``resolve``, ``socket.getaddrinfo`` by default) and *every* address returned must be
  allowed (:func:`address_refusal`): refused are loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
  shared/CGNAT (100.64/10), link-local (169.254/16, fe80::/10), multicast, unspecified, reserved and any other
  non-global range, IPv4 addresses embedded in IPv6 (``::ffff:a.b.c.d``, 6to4, NAT64, Teredo) judged as the
  IPv4 they carry, and the cloud metadata endpoints (:data:`METADATA_ADDRESSES`, :data:`METADATA_HOSTNAMES`).
  ``localhost`` and ``*.localhost`` count as loopback without asking DNS.

``allow_insecure`` (the documented opt-in for the offline emulator and tests, off by default) allows exactly
two more things: the ``http`` scheme, and loopback addresses (127/8, ``::1``, ``localhost``). It never allows
other schemes, credentials in the URL, private/link-local/multicast/unspecified/reserved addresses, nor the
metadata endpoints: an emulator runs on the worker itself, and nothing else needs a wider door.

Resolution errors (``socket.gaierror``, an ``OSError``) propagate unchanged: a DNS failure is not proof of an
attack, the caller's retry policy decides. The check resolves once and the HTTP client resolves again, so a
DNS-rebinding server could still answer differently the second time; callers that can see the connected peer
should also pass it to :func:`address_refusal` (e.g. ``sock.getpeername()[0]``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import idna

from airflow_provider_magicvideo.redaction import truncate

__all__ = ["METADATA_ADDRESSES", "METADATA_HOSTNAMES", "REDIRECT_STATUSES", "RefusedVideoUrl", "TooManyRedirects",
           "address_refusal", "check_video_url", "follow_redirects"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
R = TypeVar("R")

#: Instance-metadata and platform endpoints (AWS IMDS v4/v6, ECS/EKS credentials, Azure wireserver,
#: Alibaba, Oracle): refused always, even with ``allow_insecure``.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.170.23", "168.63.129.16", "100.100.100.200", "192.0.0.192",
    "fd00:ec2::254", "fd00:ec2::23",
))
METADATA_HOSTNAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                                "instance-data.ec2.internal"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_TEREDO = ipaddress.ip_network("2001::/32")
# Refused even when the stdlib's flags disagree (they changed between Python patch releases).
_NEVER = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "100::/64",
))
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\\]|\s")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


class RefusedVideoUrl(ValueError):
    """The provider will not fetch this URL. ``host`` names the refused host (never the query string);
    ``reason`` says why."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        shown = repr(truncate(host, 100)) if host else "(no host)"
        super().__init__(f"Refusing to fetch the video from {shown}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.host, self.reason)


class TooManyRedirects(RefusedVideoUrl):
    """More redirects than allowed; ``host`` is the host of the last redirecting response."""


def address_refusal(address: str | IPAddress, *, allow_insecure: bool = False) -> str | None:
    """Why the provider must not connect to ``address``, or ``None`` if it may (the rules in the module doc)."""
    try:
        ip = address if isinstance(address, IPAddress) else ipaddress.ip_address(address)
    except ValueError:
        return f"{truncate(address, 60)!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        embedded = ip.ipv4_mapped or ip.sixtofour or _nat64(ip)
        if ip in _TEREDO:
            return f"{ip} is a Teredo tunnel address"
        if embedded is not None:
            inner = address_refusal(embedded, allow_insecure=allow_insecure)
            return f"{ip} embeds {inner}" if inner else None
        if ip in ipaddress.ip_network("::/96") and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
            return f"{ip} is an IPv4-compatible address"
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata endpoint"
    if any(ip in net for net in _LOOPBACK) or ip.is_loopback:
        return None if allow_insecure else f"{ip} is a loopback address (allowed only with allow_insecure)"
    for flag in ("is_unspecified", "is_link_local", "is_multicast", "is_private", "is_reserved"):
        if getattr(ip, flag):
            return f"{ip} is {flag[3:].replace('_', '-')}"
    if any(ip.version == net.version and ip in net for net in _NEVER) or not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _nat64(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _ipv4_number(host: str) -> ipaddress.IPv4Address | bool | None:
    """The WHATWG/inet_aton IPv4 reading of ``host``: an address, ``None`` (not numeric: a name) or ``False``
    (looks numeric but is invalid)."""
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    if not re.fullmatch(r"[0-9]+|0[xX][0-9a-fA-F]*", labels[-1]):
        return None
    if len(labels) > 4:
        return False
    numbers = []
    for label in labels:
        try:
            if label[:2].lower() == "0x":
                numbers.append(int(label[2:] or "0", 16))
            elif len(label) > 1 and label.startswith("0"):
                numbers.append(int(label[1:], 8))
            else:
                numbers.append(int(label, 10))
        except ValueError:
            return False
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return False
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _display_host(url: str) -> str:
    """A best-effort host for error messages: never the path, query or user info."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    netloc = re.split(r"[/?#\\]", rest, maxsplit=1)[0]
    return _FORBIDDEN_CHARS.sub("", netloc.rsplit("@", 1)[-1])


def check_video_url(url: str, *, allow_insecure: bool = False,
                    resolve: Callable[..., Any] = socket.getaddrinfo) -> str:
    """The URL to fetch (normalised: lower-case scheme and host, dotted-quad IPv4, ASCII/IDNA host, no
    fragment; path and query byte-identical) or :class:`RefusedVideoUrl`. Fetch the *returned* URL."""
    if not isinstance(url, str) or not url:
        raise RefusedVideoUrl("", f"not a URL: {truncate(url, 60)}")
    if _FORBIDDEN_CHARS.search(url):
        raise RefusedVideoUrl(_display_host(url), "the URL contains whitespace, control characters or a backslash")
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError as exc:
        raise RefusedVideoUrl(_display_host(url), f"unparseable URL or port ({exc})") from None
    scheme = split.scheme.lower()
    allowed = ("https", "http") if allow_insecure else ("https",)
    if scheme not in allowed:
        shown = truncate(scheme, 20) if scheme else "none"
        raise RefusedVideoUrl(_display_host(url), f"scheme {shown!r} is not allowed (only {' or '.join(allowed)})")
    if "@" in split.netloc:
        raise RefusedVideoUrl(_display_host(url), "the URL carries user info (credentials)")
    if port is not None and not 0 < port < 65536:
        raise RefusedVideoUrl(_display_host(url), f"invalid port {port}")
    raw_host = split.hostname or ""
    if not raw_host:
        raise RefusedVideoUrl("", "the URL has no host")
    host, literal = _normalise_host(raw_host, split.netloc)
    if literal is None:
        bare = host.rstrip(".")
        if bare in METADATA_HOSTNAMES:
            raise RefusedVideoUrl(host, "a cloud metadata host name")
        if (bare == "localhost" or bare.endswith(".localhost")) and not allow_insecure:
            raise RefusedVideoUrl(host, "localhost is a loopback name (allowed only with allow_insecure)")
        addresses = _resolve(host, port or (443 if scheme == "https" else 80), resolve)
    else:
        addresses = [str(literal)]
    for address in addresses:
        refusal = address_refusal(address, allow_insecure=allow_insecure)
        if refusal:
            raise RefusedVideoUrl(host, refusal if literal is not None else f"resolves to {refusal}")
    shown_host = f"[{host}]" if ":" in host else host
    return (f"{scheme}://{shown_host}{'' if port is None else f':{port}'}{split.path or '/'}"
            f"{'?' + split.query if split.query else ''}")


def _normalise_host(raw_host: str, netloc: str) -> tuple[str, IPAddress | None]:
    """(ASCII host for the URL, the IP address if the host is a literal)."""
    if netloc.rsplit("@", 1)[-1].startswith("["):
        try:
            v6 = ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise RefusedVideoUrl(raw_host, "invalid IPv6 literal") from None
        return str(v6), v6
    try:
        host = raw_host if raw_host.isascii() else idna.encode(raw_host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise RefusedVideoUrl(raw_host, "invalid international host name") from None
    host = host.lower()
    number = _ipv4_number(host)
    if number is False:
        raise RefusedVideoUrl(host, "a numeric host that is not a valid IPv4 address")
    if isinstance(number, ipaddress.IPv4Address):
        return str(number), number
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 254 or not all(_LABEL.fullmatch(label) for label in labels):
        raise RefusedVideoUrl(host, "not a valid host name")
    return host, None


def _resolve(host: str, port: int, resolve: Callable[..., Any]) -> list[str]:
    infos = resolve(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise RefusedVideoUrl(host, "the name resolves to no address")
    return addresses


def follow_redirects(first_url: str, fetch: Callable[[str], tuple[int, Mapping[str, str], R]], *,
                     max_redirects: int = 5, allow_insecure: bool = False,
                     resolve: Callable[..., Any] = socket.getaddrinfo) -> tuple[str, int, Mapping[str, str], R]:
    """Fetch ``first_url`` following at most ``max_redirects`` redirects, checking every URL before it is
    connected to. Returns ``(final_url, status, headers, response)`` of the first non-redirect answer.

    ``fetch(url)`` must do one request *without* following redirects itself (``requests``:
    ``allow_redirects=False``; ``aiohttp``: ``allow_redirects=False``) and return ``(status, headers,
    response)``; it must not send the API key (video URLs carry their own authorisation). A redirect
    response is closed (``response.close()`` when it has one) before the next hop. ``Location`` may be
    relative. Raises :class:`RefusedVideoUrl` for a refused hop or a redirect without ``Location``, and
    :class:`TooManyRedirects` after ``max_redirects`` hops; whatever ``fetch`` raises propagates.
    """
    if max_redirects < 0:
        raise ValueError(f"max_redirects must be >= 0, got {max_redirects!r}")
    url = check_video_url(first_url, allow_insecure=allow_insecure, resolve=resolve)
    hops = 0
    while True:
        status, headers, response = fetch(url)
        if status not in REDIRECT_STATUSES:
            return url, status, headers, response
        location = next((v for k, v in headers.items() if k.lower() == "location"), None)
        close = getattr(response, "close", None)
        if callable(close):
            close()
        host = urlsplit(url).hostname or ""
        if not location:
            raise RefusedVideoUrl(host, f"HTTP {status} redirect without a Location header")
        if hops >= max_redirects:
            raise TooManyRedirects(host, f"more than {max_redirects} redirects")
        hops += 1
        try:
            url = check_video_url(urljoin(url, location), allow_insecure=allow_insecure, resolve=resolve)
        except RefusedVideoUrl as exc:
            raise RefusedVideoUrl(exc.host, f"{exc.reason} (redirect {hops} from {host!r})") from None
