"""Behaviour of the SSRF guard (:mod:`airflow_provider_magicvideo.hooks.video_url`), public surface only.

The rules under test are the module docstring's and docs/security.md's: ``https`` only, no user info, after
resolution no loopback / private / link-local / multicast / reserved / metadata address (IPv4 embedded in IPv6
judged as that IPv4, numeric spellings read as browsers read them), metadata host names refused without DNS,
``allow_insecure`` = ``http`` + loopback and nothing else, and the same check on every redirect hop.

DNS is always fake: ``socket.getaddrinfo`` and the ``resolve`` defaults of the module's functions (bound when
the module was imported, so monkeypatching ``socket`` alone would not reach them) are replaced by a table.
"""

from __future__ import annotations

import pickle
import socket
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from airflow_provider_magicvideo.hooks import video_url
from airflow_provider_magicvideo.hooks.video_url import (
    RefusedVideoUrl,
    TooManyRedirects,
    check_video_url,
    follow_redirects,
)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


class FakeDns:
    """``getaddrinfo`` answering from a table; an unknown name is a ``gaierror``. Records every question."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {
            "cdn.example.com": [PUBLIC_V4],
            "v6.example.com": [PUBLIC_V6],
            "both.example.com": [PUBLIC_V4, PUBLIC_V6],
            "localhost": ["127.0.0.1", "::1"],
            "app.localhost": ["127.0.0.1"],
        }
        self.calls: list[tuple[str, Any]] = []

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        self.calls.append((host, port))
        name = host.removesuffix(".")  # an absolute name is the same name
        if name not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in self.table[name]]

    @property
    def hosts(self) -> list[str]:
        return [host for host, _ in self.calls]


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    for function in (video_url.check_video_url, video_url.follow_redirects):
        monkeypatch.setitem(function.__kwdefaults__, "resolve", fake)
    return fake


def _refused(url: object, **kwargs: Any) -> RefusedVideoUrl:
    with pytest.raises(RefusedVideoUrl) as info:
        check_video_url(url, **kwargs)  # type: ignore[arg-type]
    return info.value


# --- accepted ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "expected"), [
    ("https://cdn.example.com/v.mp4", "https://cdn.example.com/v.mp4"),
    ("https://cdn.example.com/r/gen-1.mp4?X-Amz-Expires=600&X-Amz-Signature=ab%2Fcd",
     "https://cdn.example.com/r/gen-1.mp4?X-Amz-Expires=600&X-Amz-Signature=ab%2Fcd"),
    ("HTTPS://CDN.Example.COM/Path/V.mp4", "https://cdn.example.com/Path/V.mp4"),
    ("https://cdn.example.com", "https://cdn.example.com/"),
    ("https://cdn.example.com:8443/v.mp4", "https://cdn.example.com:8443/v.mp4"),
    ("https://cdn.example.com/v.mp4#t=10", "https://cdn.example.com/v.mp4"),
    ("https://cdn.example.com./v.mp4", "https://cdn.example.com./v.mp4"),
    ("https://v6.example.com/v.mp4", "https://v6.example.com/v.mp4"),
    ("https://both.example.com/v.mp4", "https://both.example.com/v.mp4"),
    (f"https://{PUBLIC_V4}/v.mp4", f"https://{PUBLIC_V4}/v.mp4"),
    (f"https://[{PUBLIC_V6}]/v.mp4", f"https://[{PUBLIC_V6}]/v.mp4"),
    ("https://1572395042/v.mp4", f"https://{PUBLIC_V4}/v.mp4"),  # 93.184.216.34 as one decimal number
    ("https://[::ffff:93.184.216.34]/v.mp4", "https://[::ffff:5db8:d822]/v.mp4"),
])
def test_a_public_https_url_is_accepted_and_normalised(url: str, expected: str, dns: FakeDns) -> None:
    assert check_video_url(url) == expected


def test_a_name_is_resolved_with_the_scheme_or_explicit_port(dns: FakeDns) -> None:
    check_video_url("https://cdn.example.com/a")
    check_video_url("https://cdn.example.com:8443/a")
    check_video_url("http://cdn.example.com/a", allow_insecure=True)
    assert dns.calls == [("cdn.example.com", 443), ("cdn.example.com", 8443), ("cdn.example.com", 80)]


def test_an_ip_literal_is_not_resolved(dns: FakeDns) -> None:
    check_video_url(f"https://{PUBLIC_V4}/v.mp4")
    check_video_url(f"https://[{PUBLIC_V6}]/v.mp4")
    assert dns.calls == []


def test_an_explicit_resolver_is_used() -> None:
    seen: list[str] = []

    def resolve(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        seen.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, port))]

    assert check_video_url("https://videos.other.test/v.mp4", resolve=resolve) == "https://videos.other.test/v.mp4"
    assert seen == ["videos.other.test"]


# --- refused addresses -------------------------------------------------------------------------------------

METADATA_LITERALS = [
    "169.254.169.254", "169.254.170.2", "169.254.170.23", "168.63.129.16", "100.100.100.200", "192.0.0.192",
    "[fd00:ec2::254]", "[fd00:ec2::23]", "[FD00:EC2:0:0:0:0:0:254]",
]
# 169.254.169.254 spelt the ways browsers / inet_aton read it.
METADATA_SPELLINGS = [
    "2852039166", "0xa9fea9fe", "0XA9FEA9FE", "0251.0376.0251.0376", "0xa9.0xfe.0xa9.0xfe", "169.254.43518",
    "169.16689662", "0251.254.0xa9.254", "169.254.169.254.", "０xa9fea9fe", "169．254．169．254",
    "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "[0:0:0:0:0:ffff:a9fe:a9fe]", "[2002:a9fe:a9fe::1]",
    "[64:ff9b::169.254.169.254]", "[64:ff9b:1::a9fe:a9fe]",
]
NON_PUBLIC_LITERALS = [
    "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.1.1", "100.64.0.1", "100.127.255.254",
    "169.254.1.1", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "198.18.0.1", "192.0.0.8", "192.0.2.1", "203.0.113.9",
    "[fc00::1]", "[fd12:3456::1]", "[fe80::1]", "[fe80::1%25eth0]", "[fec0::1]", "[ff02::1]", "[::]", "[100::1]",
    "[2001:db8::1]", "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # documentation range, Teredo
    "[::ffff:10.0.0.1]", "[::ffff:192.168.0.1]", "[::ffff:0:a9fe:a9fe]", "[2002:0a00:0001::1]",
    "[64:ff9b::10.0.0.1]", "[::169.254.169.254]", "[::8.8.8.8]",  # deprecated IPv4-compatible
    "167772161", "0xa000001", "012.0.0.1", "10.1", "0x0a.0x00.0x00.0x01", "3232235777",  # 10.0.0.1, 192.168.1.1
]
LOOPBACK_LITERALS = [
    "127.0.0.1", "127.0.0.2", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.1", "127.255.255.254",
    "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[64:ff9b::127.0.0.1]",
    "１２７.０.０.１",
]


@pytest.mark.parametrize(("scheme", "allow_insecure"), [("https", False), ("https", True), ("http", True)],
                         ids=["https-strict", "https-insecure", "http-insecure"])
@pytest.mark.parametrize("host", METADATA_LITERALS + METADATA_SPELLINGS + NON_PUBLIC_LITERALS)
def test_non_public_and_metadata_addresses_are_refused_always(host: str, scheme: str, allow_insecure: bool,
                                                               dns: FakeDns) -> None:
    error = _refused(f"{scheme}://{host}/latest/meta-data/", allow_insecure=allow_insecure)
    assert error.reason
    assert "latest" not in str(error)
    assert dns.calls == []  # a literal is judged as it is, never looked up


@pytest.mark.parametrize("host", METADATA_LITERALS + METADATA_SPELLINGS)
def test_metadata_addresses_say_so(host: str) -> None:
    assert "metadata" in _refused(f"http://{host}/", allow_insecure=True).reason


@pytest.mark.parametrize("host", [*LOOPBACK_LITERALS, "localhost", "app.localhost", "LOCALHOST", "localhost."])
def test_loopback_is_refused_by_default_and_allowed_with_allow_insecure(host: str, dns: FakeDns) -> None:
    for scheme in ("https", "http"):
        _refused(f"{scheme}://{host}:8080/v.mp4")
    assert dns.calls == []  # localhost is refused as a name, without asking DNS
    for scheme in ("https", "http"):
        url = check_video_url(f"{scheme}://{host}:8080/v.mp4?x=1", allow_insecure=True)
        assert url.startswith(f"{scheme}://") and url.endswith(":8080/v.mp4?x=1")


@pytest.mark.parametrize("allow_insecure", [False, True], ids=["strict", "insecure"])
@pytest.mark.parametrize("name", [
    "metadata", "metadata.google.internal", "METADATA.Google.Internal", "metadata.google.internal.",
    "metadata.goog", "instance-data", "instance-data.ec2.internal", "ｍｅｔａｄａｔａ.google.internal",
])
def test_metadata_host_names_are_refused_without_asking_dns(name: str, allow_insecure: bool,
                                                            dns: FakeDns) -> None:
    dns.table[name.lower().rstrip(".")] = [PUBLIC_V4]  # even when DNS would answer a public address
    error = _refused(f"http{'' if allow_insecure else 's'}://{name}/computeMetadata/v1/", allow_insecure=allow_insecure)
    assert "metadata" in error.reason
    assert dns.calls == []


@pytest.mark.parametrize("allow_insecure", [False, True], ids=["strict", "insecure"])
@pytest.mark.parametrize("answer", [
    ["169.254.169.254"], ["fd00:ec2::254"], ["168.63.129.16"], ["10.0.0.5"], ["192.168.0.10"], ["fe80::1%eth0"],
    ["::ffff:169.254.169.254"], ["100.64.1.1"], ["0.0.0.0"], ["::"], ["224.0.0.251"],
    [PUBLIC_V4, "10.0.0.5"], ["10.0.0.5", PUBLIC_V4], [PUBLIC_V6, "fc00::5"], [PUBLIC_V4, "169.254.169.254"],
])
def test_a_name_resolving_to_any_refused_address_is_refused(answer: list[str], allow_insecure: bool,
                                                            dns: FakeDns) -> None:
    dns.table["evil.example.com"] = answer
    scheme = "http" if allow_insecure else "https"
    error = _refused(f"{scheme}://evil.example.com/v.mp4", allow_insecure=allow_insecure)
    assert error.host == "evil.example.com"
    assert "resolves to" in error.reason


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["::1"], [PUBLIC_V4, "127.0.0.1"]])
def test_a_name_resolving_to_loopback_needs_allow_insecure(answer: list[str], dns: FakeDns) -> None:
    dns.table["dev.example.com"] = answer
    _refused("https://dev.example.com/v.mp4")
    assert check_video_url("http://dev.example.com/v.mp4", allow_insecure=True) == "http://dev.example.com/v.mp4"


def test_a_name_resolving_to_nothing_is_refused(dns: FakeDns) -> None:
    dns.table["empty.example.com"] = []
    assert "no address" in _refused("https://empty.example.com/v.mp4").reason


def test_a_dns_failure_propagates_unchanged() -> None:
    with pytest.raises(socket.gaierror):
        check_video_url("https://unknown.example.com/v.mp4")


# --- refused URL shapes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("allow_insecure", [False, True], ids=["strict", "insecure"])
@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "file://localhost/etc/passwd", "javascript:alert(1)", "ftp://cdn.example.com/v.mp4",
    "data:video/mp4;base64,AAAAGGZ0eXA=", "gopher://cdn.example.com/", "ws://cdn.example.com/", "wss://cdn.example.com/",
    "sftp://cdn.example.com/v.mp4", "jar:https://cdn.example.com/v.mp4!/", "//cdn.example.com/v.mp4",
    "cdn.example.com/v.mp4", "/v.mp4", "https", "hxxps://cdn.example.com/",
])
def test_other_schemes_are_refused_always(url: str, allow_insecure: bool, dns: FakeDns) -> None:
    error = _refused(url, allow_insecure=allow_insecure)
    assert "scheme" in error.reason
    assert dns.calls == []


def test_http_needs_allow_insecure() -> None:
    assert "scheme 'http'" in _refused("http://cdn.example.com/v.mp4").reason
    assert check_video_url("http://cdn.example.com/v.mp4", allow_insecure=True) == "http://cdn.example.com/v.mp4"


@pytest.mark.parametrize("allow_insecure", [False, True], ids=["strict", "insecure"])
@pytest.mark.parametrize("url", [
    "https://user:Pa55w0rdSecret@cdn.example.com/v.mp4", "https://user@cdn.example.com/v.mp4",
    "https://:Pa55w0rdSecret@cdn.example.com/v.mp4", "https://cdn.example.com@169.254.169.254/",
    "https://user:Pa55w0rdSecret@127.0.0.1/", "http://Pa55w0rdSecret@localhost:8080/",
    "https://a%40b:Pa55w0rdSecret@cdn.example.com/",
])
def test_user_info_is_refused_and_not_echoed(url: str, allow_insecure: bool, dns: FakeDns) -> None:
    if url.startswith("http:") and not allow_insecure:
        url = "https" + url[4:]
    error = _refused(url, allow_insecure=allow_insecure)
    assert "user info" in error.reason
    assert "Pa55w0rdSecret" not in str(error) and "Pa55w0rdSecret" not in error.host
    assert dns.calls == []


@pytest.mark.parametrize("url", [
    "https://cdn.example.com/v .mp4", "https://cdn.example.com/v.mp4\n", "https://cdn.example.com/\tv.mp4",
    "https://cdn.example.com/v.mp4\r\nX-Injected: 1", "https://cdn.example.com/\x00v.mp4",
    "https://cdn.example.com/\x7fv.mp4", "https://cdn.example.com\\@169.254.169.254/",
    "https://cdn.example.com/a\\b.mp4", " https://cdn.example.com/v.mp4", "https://cdn .example.com/",
])
def test_whitespace_control_characters_and_backslashes_are_refused(url: str, dns: FakeDns) -> None:
    _refused(url)
    _refused(url, allow_insecure=True)
    assert dns.calls == []


@pytest.mark.parametrize("url", [
    "https://cdn.example.com:0/", "https://cdn.example.com:65536/", "https://cdn.example.com:99999/",
    "https://cdn.example.com:-1/", "https://cdn.example.com:port/", "https://[::1/", "https://[::g]/",
])
def test_invalid_ports_and_brackets_are_refused(url: str) -> None:
    _refused(url, allow_insecure=True)


@pytest.mark.parametrize("url", [
    "https:///v.mp4", "https://", "https:v.mp4", "https://256.0.0.1/", "https://1.2.3.4.5/", "https://08.0.0.1/",
    "https://0x100000000/", "https://4294967296/", "https://cdn..example.com/",
    "https://-cdn.example.com/", "https://cdn-.example.com/", "https://cdn.example.123/",
    "https://metadata%2Egoogle%2Einternal/", "https://%31%36%39.254.169.254/", f"https://{'a' * 64}.example.com/",
    "https://exa\u00a0mple.com/",
])
def test_invalid_hosts_are_refused(url: str, dns: FakeDns) -> None:
    _refused(url, allow_insecure=True)
    assert dns.calls == []


@pytest.mark.parametrize("value", [None, "", b"https://cdn.example.com/v.mp4", 42, ["https://cdn.example.com/"]])
def test_a_non_string_or_empty_url_is_refused(value: object) -> None:
    assert _refused(value).host == ""


def test_the_refusal_never_shows_the_path_or_query() -> None:
    error = _refused("ftp://cdn.example.com/secret/path.mp4?X-Amz-Signature=S1gnatureThatMustNotLeak")
    assert error.host == "cdn.example.com"
    assert "S1gnature" not in str(error) and "secret/path" not in str(error)
    assert str(error).startswith("Refusing to fetch the video from 'cdn.example.com': ")


def test_refused_video_url_is_a_value_error_and_pickles() -> None:
    error = _refused("https://169.254.169.254/")
    assert isinstance(error, ValueError)
    copied = pickle.loads(pickle.dumps(error))
    assert (type(copied), copied.host, copied.reason, str(copied)) == (RefusedVideoUrl, error.host, error.reason,
                                                                       str(error))
    too_many = pickle.loads(pickle.dumps(TooManyRedirects("cdn.example.com", "more than 5 redirects")))
    assert isinstance(too_many, TooManyRedirects) and too_many.host == "cdn.example.com"


# --- follow_redirects --------------------------------------------------------------------------------------

class Response:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Server:
    """``fetch`` for :func:`follow_redirects`: answers from ``routes`` (url -> (status, headers))."""

    def __init__(self, routes: Mapping[str, tuple[int, Mapping[str, str]]]) -> None:
        self.routes = dict(routes)
        self.fetched: list[str] = []
        self.responses: list[Response] = []

    def __call__(self, url: str) -> tuple[int, Mapping[str, str], Response]:
        self.fetched.append(url)
        status, headers = self.routes[url]
        response = Response(url)
        self.responses.append(response)
        return status, headers, response


START = "https://cdn.example.com/v.mp4"


def test_a_direct_answer_is_returned() -> None:
    server = Server({START: (200, {"Content-Type": "video/mp4"})})
    url, status, headers, response = follow_redirects(START, server)
    assert (url, status, dict(headers)) == (START, 200, {"Content-Type": "video/mp4"})
    assert response is server.responses[0] and not response.closed
    assert server.fetched == [START]


@pytest.mark.parametrize("status", sorted(video_url.REDIRECT_STATUSES))
def test_redirects_are_followed_checked_and_closed(status: int, dns: FakeDns) -> None:
    dns.table["media.example.net"] = [PUBLIC_V4]
    server = Server({
        START: (status, {"location": "/moved/v.mp4"}),
        "https://cdn.example.com/moved/v.mp4": (status, {"LOCATION": "https://media.example.net/final.mp4?sig=x"}),
        "https://media.example.net/final.mp4?sig=x": (200, {}),
    })
    url, final_status, _, _ = follow_redirects(START, server)
    assert (url, final_status) == ("https://media.example.net/final.mp4?sig=x", 200)
    assert [r.closed for r in server.responses] == [True, True, False]
    assert "media.example.net" in dns.hosts


@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data/", "https://169.254.169.254/", "//169.254.169.254/latest",
    "https://2852039166/", "https://[fd00:ec2::254]/", "https://metadata.google.internal/computeMetadata/v1/",
    "https://10.0.0.1/", "https://127.0.0.1/", "https://localhost/", "http://cdn.example.com/v.mp4",
    "file:///etc/passwd", "https://user:pw@cdn.example.com/", "https://internal.example.com/",
])
def test_a_refused_redirect_hop_is_never_fetched(location: str, dns: FakeDns) -> None:
    dns.table["internal.example.com"] = ["10.1.2.3"]
    server = Server({START: (302, {"Location": location})})
    with pytest.raises(RefusedVideoUrl) as info:
        follow_redirects(START, server)
    assert server.fetched == [START]
    assert server.responses[0].closed
    assert "redirect 1 from 'cdn.example.com'" in info.value.reason


def test_allow_insecure_applies_to_every_hop() -> None:
    first = "http://127.0.0.1:8080/v.mp4"
    server = Server({first: (302, {"Location": "http://localhost:8080/final.mp4"}),
                     "http://localhost:8080/final.mp4": (200, {})})
    assert follow_redirects(first, server, allow_insecure=True)[0] == "http://localhost:8080/final.mp4"
    server = Server({first: (302, {"Location": "http://169.254.169.254/"})})
    with pytest.raises(RefusedVideoUrl, match="metadata"):
        follow_redirects(first, server, allow_insecure=True)
    assert server.fetched == [first]


@pytest.mark.parametrize("first", ["https://169.254.169.254/v.mp4", "http://cdn.example.com/v.mp4",
                                   "https://user:pw@cdn.example.com/v.mp4"])
def test_a_refused_first_url_is_never_fetched(first: str) -> None:
    server = Server({})
    with pytest.raises(RefusedVideoUrl):
        follow_redirects(first, server)
    assert server.fetched == []


@pytest.mark.parametrize("headers", [{}, {"Location": ""}, {"Content-Type": "text/html"}])
def test_a_redirect_without_location_is_refused(headers: dict[str, str]) -> None:
    server = Server({START: (301, headers)})
    with pytest.raises(RefusedVideoUrl, match="without a Location"):
        follow_redirects(START, server)
    assert server.responses[0].closed


@pytest.mark.parametrize("max_redirects", [0, 1, 5])
def test_more_redirects_than_allowed_is_too_many(max_redirects: int) -> None:
    hops = [f"https://cdn.example.com/hop{i}" for i in range(max_redirects + 2)]
    routes: dict[str, tuple[int, Mapping[str, str]]] = {START: (302, {"Location": hops[0]})}
    routes.update({hops[i]: (302, {"Location": hops[i + 1]}) for i in range(len(hops) - 1)})
    server = Server(routes)
    with pytest.raises(TooManyRedirects, match=f"more than {max_redirects} redirects"):
        follow_redirects(START, server, max_redirects=max_redirects)
    assert len(server.fetched) == max_redirects + 1
    assert all(r.closed for r in server.responses)


def test_exactly_max_redirects_is_fine() -> None:
    server = Server({START: (307, {"Location": "/a"}), "https://cdn.example.com/a": (308, {"Location": "/b"}),
                     "https://cdn.example.com/b": (200, {})})
    assert follow_redirects(START, server, max_redirects=2)[:2] == ("https://cdn.example.com/b", 200)


def test_a_negative_max_redirects_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="max_redirects"):
        follow_redirects(START, Server({}), max_redirects=-1)


def test_what_fetch_raises_propagates() -> None:
    def fetch(url: str) -> Any:
        raise ConnectionResetError("peer reset")

    with pytest.raises(ConnectionResetError):
        follow_redirects(START, fetch)


def test_follow_redirects_uses_the_resolver_it_is_given() -> None:
    def resolve(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.9" if host == "bad.test" else PUBLIC_V4, port))]

    server: Callable[[str], Any] = Server({"https://good.test/": (302, {"Location": "https://bad.test/"})})
    with pytest.raises(RefusedVideoUrl, match=r"10\.0\.0\.9"):
        follow_redirects("https://good.test/", server, resolve=resolve)


# --- known bugs: these fail on the current module (see the commit message) ---------------------------------

@pytest.mark.parametrize("char", ["\x85", "\x9b", "\u00a0", "\u2028", "\u3000", "\u1680"],
                         ids=["NEL", "CSI", "NBSP", "LINE-SEPARATOR", "IDEOGRAPHIC-SPACE", "OGHAM-SPACE"])
def test_unicode_whitespace_and_c1_controls_are_refused(char: str, dns: FakeDns) -> None:
    """The module doc: "No ... whitespace, control characters or backslashes anywhere in the URL"."""
    _refused(f"https://cdn.example.com/v{char}.mp4")
    _refused(f"https://cdn.example.com/v.mp4?a={char}")
