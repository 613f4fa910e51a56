"""The provider's Airflow plugin: the api-server redirect behind the "AI/ML API video" extra link.

Registered through the ``airflow.plugins`` entry point (pyproject.toml). Every Airflow process loads plugins,
task processes included (for macros and listeners), so this module imports nothing heavy: the FastAPI app
(and with it Airflow's api-server security module) is built on the first request the api-server routes here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.providers.common.compat.sdk import AirflowPlugin

from airflow_provider_magicvideo.links import URL_PREFIX

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class LazyVideoRedirectApp:
    """An ASGI app that builds :func:`.video_redirect.create_app` on its first request."""

    def __init__(self) -> None:
        self._app: Callable[..., Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if self._app is None:
            from airflow_provider_magicvideo.plugins.video_redirect import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class MagicVideoPlugin(AirflowPlugin):
    """Mounts ``GET /magicvideo/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/video`` on the api-server."""

    name = "magicvideo"
    fastapi_apps = [{"name": "AI/ML API video redirect", "app": LazyVideoRedirectApp(), "url_prefix": URL_PREFIX}]
