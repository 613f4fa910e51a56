"""Fixtures for the trigger tests: a fast connection, no leaked shared sessions."""

from __future__ import annotations

import logging

import pytest

TRIGGER_LOGGER = "tests.magicvideo.trigger"




@pytest.fixture
def fake_api_conn(magicvideo_conn):
    """``magicvideo_default`` on a fake host; no HTTP-level retries so one poll is one request."""
    from tests.hooks.support import BASE_URL

    return magicvideo_conn(BASE_URL, max_retries=0)


@pytest.fixture
def trigger_log() -> logging.Logger:
    logger = logging.getLogger(TRIGGER_LOGGER)
    logger.setLevel(logging.DEBUG)
    return logger


@pytest.fixture(autouse=True)
def _no_shared_sessions_leak(no_shared_session_leak):
    """Every async-hook test must release the shared session it used (see tests/conftest.py)."""
