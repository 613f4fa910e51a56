"""Shared ``aiohttp`` sessions for triggers: one per (event loop, connection id), closed by its last user.

Thousands of renders waiting in one triggerer then share a handful of sockets instead of one session (and
TCP/TLS handshake) per poll. The connection's settings are re-read after ``settings_ttl`` seconds, so a
rotated API key or changed extra reaches long waits without a triggerer restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from airflow_provider_magicvideo.hooks.settings import USER_AGENT, ApiSettings

Loader = Callable[[], Awaitable[ApiSettings]]


@dataclass(eq=False)
class Lease:
    """A hook's hold on a shared session. ``settings`` are the connection's as last loaded."""

    session: aiohttp.ClientSession
    settings: ApiSettings
    key: tuple[int, str]
    loop: asyncio.AbstractEventLoop
    loaded_at: float
    users: int = field(default=0)


class SessionPool:
    """Hands out :class:`Lease` objects; :meth:`stats` says what is open (for tests and diagnostics)."""

    def __init__(self, *, connection_limit: int = 32, settings_ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.connection_limit = connection_limit
        self.settings_ttl = settings_ttl
        self.clock = clock
        self._leases: dict[tuple[int, str], Lease] = {}
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    async def acquire(self, conn_id: str, load: Loader) -> Lease:
        """The live lease of this loop and connection (creating it), with one more user."""
        loop = asyncio.get_running_loop()
        key = (id(loop), conn_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            lease = self._leases.get(key)
            # id() of a finished loop can be reused by a new one: never hand out another loop's session.
            if lease is None or lease.session.closed or lease.loop is not loop:
                settings = await load()
                session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=self.connection_limit, ttl_dns_cache=300),
                    headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                    raise_for_status=False,
                )
                lease = self._leases[key] = Lease(session, settings, key, loop, self.clock())
            lease.users += 1
            return lease

    async def refresh(self, lease: Lease, load: Loader) -> ApiSettings:
        """The lease's settings, re-read from the connection when older than ``settings_ttl``."""
        if self.clock() - lease.loaded_at >= self.settings_ttl:
            lease.settings = await load()
            lease.loaded_at = self.clock()
        return lease.settings

    async def release(self, lease: Lease) -> None:
        """One user fewer; the last one closes the session."""
        lease.users -= 1
        if lease.users > 0:
            return
        if self._leases.get(lease.key) is lease:
            del self._leases[lease.key]
            lock = self._locks.get(lease.key)
            if lock is not None and not lock.locked():  # a lock is bound to its loop: do not keep it
                del self._locks[lease.key]
        await lease.session.close()

    def stats(self) -> dict[str, Any]:
        """Open sessions and their users, by connection id."""
        return {
            "sessions": len(self._leases),
            "users": {conn_id: lease.users for (_loop, conn_id), lease in self._leases.items()},
        }

    async def close_all(self) -> None:
        """Close every session of the running loop (tests; a triggerer closes them as triggers end)."""
        loop = asyncio.get_running_loop()
        for key, lease in list(self._leases.items()):
            if lease.loop is loop:
                del self._leases[key]
                self._locks.pop(key, None)
                await lease.session.close()
