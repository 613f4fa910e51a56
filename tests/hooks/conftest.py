"""Fixtures for the hook tests: the connection, hooks that never sleep, tiny real images, a working aioresponses."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import aiohttp
import pytest
from aioresponses import aioresponses
from aioresponses import core as aioresponses_core
from PIL import Image

from tests.hooks.support import BASE_URL, HOOK_LOGGER


class _StreamWriterCompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp >= 3.14 requires
    (https://github.com/pnuckowski/aioresponses/issues/289); give it a stub with ``output_size``."""

    def __init__(self, *args, stream_writer=None, **kwargs):
        super().__init__(*args, stream_writer=stream_writer or SimpleNamespace(output_size=0), **kwargs)


@pytest.fixture
def mocked(monkeypatch) -> Iterator[aioresponses]:
    """An ``aioresponses`` mock that works with the installed aiohttp."""
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _StreamWriterCompatResponse)
    with aioresponses() as mock:
        yield mock


class SleepRecorder(list):
    """Stands in for ``time.sleep``: records the seconds instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 240)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def conn(magicvideo_conn) -> Callable[..., str]:
    """``magicvideo_default`` pointing at the fake API; extras override the fast test defaults."""

    def _set(conn_id: str = "magicvideo_default", base_url: str = BASE_URL, **extra) -> str:
        extra = {"max_retries": 3, "poll_interval": 0.01, **extra}
        return magicvideo_conn(base_url, conn_id=conn_id, **extra)

    _set()
    return _set


@pytest.fixture
def hook(conn, sleeps):
    """A sync hook on the fake API whose sleeps are recorded and whose logs go to a stdlib logger (caplog)."""
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook

    hook = MagicVideoHook(client_request_id="dag_1:task_1:run_1:1")
    hook._sleep = sleeps
    hook._log = logging.getLogger(HOOK_LOGGER)
    yield hook
    hook.close()
