"""The ASGI application: backend + public routes + admin routes, wrapped by the connection dropper."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from airflow_provider_magicvideo.emulator import routes_admin, routes_api
from airflow_provider_magicvideo.emulator.backend import Emulator
from airflow_provider_magicvideo.emulator.config import EmulatorConfig
from airflow_provider_magicvideo.emulator.dropper import ASGIApp, ConnectionDropper
from airflow_provider_magicvideo.emulator.errors import api_error


def create_app(config: EmulatorConfig) -> ASGIApp:
    emulator = Emulator(config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await emulator.start()
        try:
            yield
        finally:
            await emulator.stop()

    app = FastAPI(title="magicvideo emulator", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.emulator = emulator

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "Not found" if exc.status_code == 404 else str(exc.detail)
        response = api_error(exc.status_code, message, request.url.path, now=emulator.now())
        emulator.record(request.method, request.url.path, str(exc.status_code), None, time.perf_counter())
        return response

    routes_api.register(app, emulator)
    routes_admin.register(app, emulator)
    return ConnectionDropper(app)


__all__ = ["ConnectionDropper", "Emulator", "create_app"]
