"""MagicVideoAsyncHook: the trigger's hook (``aiohttp``, one pooled session per connection and event loop)."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_magicvideo.exceptions import MagicVideoError
from airflow_provider_magicvideo.generation import Generation
from airflow_provider_magicvideo.hooks.identity import HookIdentity, auth_headers, status_params
from airflow_provider_magicvideo.hooks.retry import RetryPolicy
from airflow_provider_magicvideo.hooks.session_pool import Lease, SessionPool
from airflow_provider_magicvideo.hooks.settings import ApiSettings
from airflow_provider_magicvideo.hooks.transport import connection_error_async, error_from_response, parse_json
from airflow_provider_magicvideo.redaction import redact

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection


class MagicVideoAsyncHook(HookIdentity, BaseHook):
    """Async twin of :class:`MagicVideoHook` for triggers.

    Use as ``async with MagicVideoAsyncHook(conn_id) as hook:``; all hooks of one connection on one event loop
    share one ``aiohttp`` session from :attr:`pool`, closed when the last user leaves.
    """

    hook_name = "AI/ML API Magic Video (async)"
    pool: ClassVar[SessionPool] = SessionPool()
    _machinery_loaded: ClassVar[bool] = False

    def __init__(self, conn_id: str = HookIdentity.default_conn_name, *, client_request_id: str | None = None) -> None:
        super().__init__()
        self._init_identity(conn_id, client_request_id)
        self._lease: Lease | None = None
        self.sleep: Callable[[float], Any] = asyncio.sleep

    async def _load_settings(self) -> ApiSettings:
        if not MagicVideoAsyncHook._machinery_loaded:
            # The first import builds Airflow's secrets machinery: do it in a thread, not on the event loop that
            # every other trigger of the triggerer shares.
            await asyncio.to_thread(importlib.import_module, "airflow.providers.common.compat.connection")
            MagicVideoAsyncHook._machinery_loaded = True
        from airflow.providers.common.compat.connection import get_async_connection

        conn = await get_async_connection(self.conn_id, hook=self)
        return ApiSettings.from_connection(conn, extra=await _async_extra(conn))

    async def __aenter__(self) -> MagicVideoAsyncHook:
        self._lease = await self.pool.acquire(self.conn_id, self._load_settings)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            await self.pool.release(lease)

    async def _request(self, method: str, action: str, *, params: dict | None = None) -> tuple[Any, Mapping]:
        lease = self._lease or await self.pool.acquire(self.conn_id, self._load_settings)
        try:
            settings = await self.pool.refresh(lease, self._load_settings)
            secrets = (settings.api_key,)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout,
                                            sock_read=settings.read_timeout)

            async def attempt() -> tuple[str, Mapping[str, str]]:
                error: MagicVideoError
                try:
                    async with lease.session.request(method, settings.generations_url, params=params, timeout=timeout,
                                                     headers=auth_headers(settings, self.client_request_id)) as resp:
                        text = redact(await resp.text(), secrets)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    error = connection_error_async(exc, action, self.client_request_id)
                else:
                    if resp.status < 400:
                        return text, resp.headers
                    error = error_from_response(resp.status, text, resp.headers, action=action, secrets=secrets,
                                                client_request_id=self.client_request_id)
                raise error

            policy = RetryPolicy(max_retries=settings.max_retries)
            text, headers = await policy.acall(method, action, attempt, sleep=self.sleep)
            return parse_json(text, action, request_id=headers.get("x-inference-id"), secrets=secrets), headers
        finally:
            if self._lease is None:
                await self.pool.release(lease)

    async def aget_generation(self, generation_id: str) -> Generation:
        """Current status of a generation (one status GET, retried per the policy)."""
        payload, headers = await self._request("GET", f"status request for {generation_id}",
                                               params=status_params(generation_id))
        return Generation.from_payload(payload, generation_id=generation_id, headers=headers)


async def _async_extra(conn: Connection) -> Mapping[str, Any]:
    try:
        from airflow.providers.common.compat.connection import get_async_extra_dejson
    except ImportError:  # older common-compat
        return conn.extra_dejson
    return await get_async_extra_dejson(conn)


__all__ = ["MagicVideoAsyncHook"]
