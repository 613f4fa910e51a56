"""A scripted, hostile HTTP server on 127.0.0.1 for the security tests.

Point a hook at ``server.url`` and script what it answers, per method and path::

    with HostileServer() as server:
        server.route("POST", "/v2/video/generations", echo_authorization(401))
        ...  # drive the provider
        assert server.count("POST", "/v2/video/generations") == 1

Replies of a route are used in order and the last one repeats; a ``handler`` callback decides per request
instead. A :class:`Reply` can: set status, headers and body (bytes, str, an iterable of bytes for endless or
chunked bodies, or a callable of the request), drop the connection after reading the request (FIN or RST),
hold the answer (or the body) until a ``threading.Event`` is set, and lie in ``Content-Length``.
The server records every request it fully read (``server.requests``) before answering, so counts are exact
from the server's side. Only 127.0.0.1 is ever bound; nothing here connects anywhere.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

__all__ = ["HostileServer", "ReceivedRequest", "Reply", "drop", "echo_authorization", "endless",
           "hostile_server", "json_reply", "partial_content", "redirect"]


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server read it."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), default)

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


Body = bytes | str | Iterable[bytes] | Callable[[ReceivedRequest], "bytes | str | Iterable[bytes]"]


@dataclass
class Reply:
    """How to answer one request.

    ``body``: bytes/str are sent with a correct ``Content-Length`` unless ``headers`` sets one (then that
    value is sent as is, truthful or not, and the connection is closed after the body); an iterable of bytes is
    sent chunked, or raw when ``headers`` sets ``Content-Length``; a callable gets the request and returns
    either. ``drop``: read the request and close the connection without a byte of answer (``reset`` makes it
    an RST). ``wait``: hold the answer until the event is set; with ``wait_after_headers`` the status line and
    headers go out first and the body is held.
    """

    status: int = 200
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()
    body: Body = b""
    drop: bool = False
    reset: bool = False
    wait: threading.Event | None = None
    wait_after_headers: bool = False

    def header_pairs(self) -> list[tuple[str, str]]:
        return list(self.headers.items() if isinstance(self.headers, Mapping) else self.headers)


def json_reply(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode())


def echo_authorization(status: int = 401, template: str = "Invalid key {}", *, as_json: bool = True) -> Reply:
    """An error whose body repeats the request's ``Authorization`` header, as a careless gateway does:
    ``{"message": "Invalid key Bearer <key>"}`` (or that text alone with ``as_json=False``)."""

    def body(request: ReceivedRequest) -> bytes:
        message = template.format(request.header("Authorization", ""))
        return json.dumps({"message": message}).encode() if as_json else message.encode()

    content_type = "application/json" if as_json else "text/plain; charset=utf-8"
    return Reply(status, {"Content-Type": content_type}, body)


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, {"Location": location, "Content-Length": "0"})


def drop(*, reset: bool = False) -> Reply:
    """Read the request, then close the connection without answering (an RST with ``reset``)."""
    return Reply(drop=True, reset=reset)


def endless(chunk: bytes = b"\0" * 65536, *, status: int = 200, declared_length: int | None = None) -> Reply:
    """A body that never ends: chunked, or raw under a (lying) ``Content-Length`` of ``declared_length``."""
    headers = {"Content-Type": "video/mp4"}
    if declared_length is not None:
        headers["Content-Length"] = str(declared_length)
    return Reply(status, headers, itertools.repeat(chunk))


def partial_content(body: bytes, *, start: int = 0, total: int | None = None) -> Reply:
    """``206 Partial Content`` whatever the request asked (also when it sent no ``Range``)."""
    total = len(body) + start if total is None else total
    end = start + len(body) - 1
    return Reply(206, {"Content-Type": "video/mp4", "Content-Range": f"bytes {start}-{end}/{total}"}, body)


@dataclass
class _Route:
    method: str
    path: str | re.Pattern[str]
    replies: list[Reply]
    handler: Callable[[ReceivedRequest], Reply] | None
    used: int = 0

    def matches(self, request: ReceivedRequest) -> bool:
        if self.method != "*" and self.method != request.method:
            return False
        if isinstance(self.path, re.Pattern):
            return self.path.fullmatch(request.path) is not None
        return self.path == request.path

    def next_reply(self, request: ReceivedRequest) -> Reply:
        if self.handler is not None:
            return self.handler(request)
        reply = self.replies[min(self.used, len(self.replies) - 1)]
        self.used += 1
        return reply


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, threading.current_thread())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        split = urlsplit(self.path)
        request = ReceivedRequest(self.command, split.path, split.query, tuple(self.headers.items()),
                                  self._read_body())
        owner = self.server.owner
        reply = owner._record_and_choose(request)
        try:
            self._answer(request, reply, owner)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client hung up mid-answer: expected with endless bodies

    def _answer(self, request: ReceivedRequest, reply: Reply, owner: HostileServer) -> None:
        if reply.drop:
            self.close_connection = True
            if reply.reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if reply.wait is not None and not reply.wait_after_headers:
            owner._hold(reply.wait)
        body: Any = reply.body(request) if callable(reply.body) else reply.body
        if isinstance(body, str):
            body = body.encode()
        pairs = reply.header_pairs()
        declared = any(k.lower() == "content-length" for k, _ in pairs)
        chunked = not isinstance(body, bytes) and not declared
        if isinstance(body, bytes) and not declared:
            pairs.append(("Content-Length", str(len(body))))
        if chunked:
            pairs.append(("Transfer-Encoding", "chunked"))
        if declared:
            self.close_connection = True  # the declared length may be a lie: never reuse this connection
        self.send_response(reply.status)
        for name, value in pairs:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        if reply.wait is not None and reply.wait_after_headers:
            owner._hold(reply.wait)
        if self.command == "HEAD":
            return
        for piece in [body] if isinstance(body, bytes) else body:
            if owner.closing.is_set():
                self.close_connection = True
                return
            if piece:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HostileServer


@dataclass
class HostileServer:
    """The server; a context manager (``with HostileServer() as server``) or the ``hostile_server`` fixture."""

    default: Reply = field(default_factory=lambda: json_reply({"message": "no such route"}, 404))

    def __post_init__(self) -> None:
        self.closing = threading.Event()
        self._lock = threading.Condition()
        self._routes: list[_Route] = []
        self._requests: list[ReceivedRequest] = []
        self._connections: list[tuple[socket.socket, threading.Thread]] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ scripting
    def route(self, method: str, path: str | re.Pattern[str], *replies: Reply,
              handler: Callable[[ReceivedRequest], Reply] | None = None) -> HostileServer:
        """Answer ``method`` (``"*"``: any) on ``path`` (exact, or a regex matched in full, query excluded).
        The newest route that matches wins."""
        if bool(replies) == (handler is not None):
            raise ValueError("give either replies or a handler")
        with self._lock:
            self._routes.insert(0, _Route(method.upper(), path, list(replies), handler))
        return self

    # ----------------------------------------------------------------------------------------- observing
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests fully received for ``method`` and ``path`` (``None``: any)."""
        return sum(1 for r in self.requests
                   if (method is None or r.method == method.upper()) and (path is None or r.path == path))

    def wait_for(self, method: str | None = None, path: str | None = None, count: int = 1,
                 timeout: float = 30.0) -> bool:
        """Block until ``count`` matching requests arrived (the timeout is a safety net, not a measurement)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._count_locked(method, path) >= count, timeout)

    def _count_locked(self, method: str | None, path: str | None) -> int:
        return sum(1 for r in self._requests
                   if (method is None or r.method == method.upper()) and (path is None or r.path == path))

    # ---------------------------------------------------------------------------------------- lifecycle
    def start(self) -> HostileServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hostile-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release every held answer, cut open connections and join the handler threads."""
        self.closing.set()
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for sock, _ in connections:
            with contextlib.suppress(OSError):  # already closed by the handler or the client
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            if thread is not threading.current_thread():
                thread.join(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._httpd = None

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------- handler plumbing
    def _track(self, sock: socket.socket, thread: threading.Thread) -> None:
        with self._lock:
            self._connections.append((sock, thread))

    def _record_and_choose(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            route = next((r for r in self._routes if r.matches(request)), None)
            if route is not None and route.handler is None:
                return route.next_reply(request)
        # a handler callback runs outside the lock: it may inspect server.requests
        return route.next_reply(request) if route is not None else self.default

    def _hold(self, event: threading.Event) -> None:
        while not event.wait(0.05):
            if self.closing.is_set():
                return


@pytest.fixture
def hostile_server() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server
