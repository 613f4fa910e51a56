"""The provider's Airflow plugin: the api-server redirect behind the "AI/ML API video" extra link.

Registered through the ``airflow.plugins`` entry point (pyproject.toml). Every Airflow process loads plugins,
task processes included (for macros and listeners), so this module imports nothing heavy: the FastAPI app
(and with it Airflow's api-server security module) is built on the first request the api-server routes here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from airflow.providers.common.compat.sdk import AirflowPlugin

from airflow_provider_magicvideo.links import URL_PREFIX

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


#: The cookie Airflow's UI keeps its JWT in (``COOKIE_NAME_JWT_TOKEN``).
JWT_COOKIE = "_token"


class LazyVideoRedirectApp:
    """An ASGI app that builds :func:`.video_redirect.create_app` on its first request.

    On Airflow 3.0 the api-server's auth dependency reads only the ``Authorization`` header, while a click on
    a link in the UI sends only the UI's ``_token`` cookie (Airflow >= 3.1 reads that cookie itself, in its
    ``JWTRefreshMiddleware``); there, the cookie's token is handed over as the header. Airflow's auth manager
    still validates it: nothing is accepted that Airflow would not accept.
    """

    def __init__(self) -> None:
        self._app: Callable[..., Awaitable[None]] | None = None
        self._cookie_as_bearer = False

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if self._app is None:
            from airflow import __version__ as airflow_version

            from airflow_provider_magicvideo.plugins.video_redirect import create_app

            self._cookie_as_bearer = tuple(int(p) for p in airflow_version.split(".")[:2]) < (3, 1)
            self._app = create_app()
        if self._cookie_as_bearer and scope.get("type") == "http":
            scope = cookie_as_bearer(scope)
        await self._app(scope, receive, send)


def cookie_as_bearer(scope: Scope) -> Scope:
    """``scope`` with ``Authorization: Bearer <the _token cookie>`` when it has that cookie and no header."""
    headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
    if any(name.lower() == b"authorization" for name, _ in headers):
        return scope
    cookie = SimpleCookie()
    for name, value in headers:
        if name.lower() == b"cookie":
            try:
                cookie.load(value.decode("latin-1"))
            except CookieError:
                return scope
    morsel = cookie.get(JWT_COOKIE)
    if morsel is None or not morsel.value:
        return scope
    return {**scope, "headers": [*headers, (b"authorization", f"Bearer {morsel.value}".encode("latin-1"))]}


class MagicVideoPlugin(AirflowPlugin):
    """Mounts ``GET /magicvideo/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/video`` on the api-server."""

    name = "magicvideo"
    fastapi_apps = [{"name": "AI/ML API video redirect", "app": LazyVideoRedirectApp(), "url_prefix": URL_PREFIX}]
