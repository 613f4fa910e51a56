"""Emulator tests: the plugin's fixtures imported explicitly (``pytest_plugins`` is root-only)."""

from __future__ import annotations

import pytest

from airflow_provider_magicvideo.emulator.pytest_plugin import (  # noqa: F401
    magicvideo_emulator,
    magicvideo_emulator_session,
)


@pytest.fixture
def emulator(magicvideo_emulator):  # noqa: F811 - short alias
    return magicvideo_emulator
