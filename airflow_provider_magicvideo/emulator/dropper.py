"""Reset a TCP connection instead of answering: the ``drop_after_post`` fault, isolated here.

The fault models the worst ambiguity a client can meet: the server did the work (the generation exists and
is logged) but the answer never arrives. To reproduce it the socket must close with an RST and no HTTP bytes
at all. ASGI has no way to say "abort this connection": raising makes uvicorn answer 500, and returning
without a response makes it answer 500 too. So this outermost layer swallows the route's response and, on its
first ``send``, reaches uvicorn's private per-request cycle object through the bound method ``send.__self__``
(``httptools_impl``/``h11_impl``'s ``RequestResponseCycle``), sets ``SO_LINGER`` to 0 on its transport's
socket (so the peer sees RST rather than FIN) and aborts the transport. This depends on uvicorn internals;
``tests/emulator/test_emulator_faults.py::test_drop_after_post_*`` fails loudly if an upgrade breaks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DROP_KEY = "magicvideo.drop_connection"


def request_drop(scope: Scope) -> None:
    """Called by a route: reset this request's connection instead of sending its response."""
    scope[DROP_KEY] = True


def is_dropped(scope: Scope) -> bool:
    return bool(scope.get(DROP_KEY))


class ConnectionDropper:
    """Outermost ASGI layer: resets the TCP connection when a route asked for it with :func:`request_drop`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dropped = False

        async def guarded_send(message: Message) -> None:
            nonlocal dropped
            if is_dropped(scope):
                if not dropped:
                    dropped = True
                    _abort(send)
                return
            await send(message)

        await self.app(scope, receive, guarded_send)
        if dropped:
            await asyncio.sleep(0)  # let connection_lost run so uvicorn does not try to answer 500


def _abort(send: Send) -> None:
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: uvicorn's transport is not reachable from send()")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # linger 0: the peer gets RST, not an orderly FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    if cycle is not None:
        cycle.disconnected = True
