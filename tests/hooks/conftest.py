"""Fixtures for the hook tests: the connection, hooks that never sleep, tiny real images."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import pytest
from PIL import Image

from tests.hooks.support import BASE_URL, HOOK_LOGGER


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
        # The usage-log lookup is off here (test_reconcile.py turns it on): the other tests pin what an
        # ambiguous submit is when it cannot be reconciled.
        extra = {"max_retries": 3, "poll_interval": 1, "reconcile_window": 0, **extra}
        return magicvideo_conn(base_url, conn_id=conn_id, **extra)

    _set()
    return _set


@pytest.fixture
def hook(conn, sleeps):
    """A sync hook on the fake API whose sleeps are recorded and whose logs go to a stdlib logger (caplog)."""
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook

    hook = MagicVideoHook(client_request_id="dag_1:task_1:run_1:1")
    hook.sleep = sleeps
    hook._log = logging.getLogger(HOOK_LOGGER)
    yield hook
    hook.close()
