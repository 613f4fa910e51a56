"""Emulator tests: the plugin's fixtures imported explicitly (``pytest_plugins`` is root-only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_magicvideo.emulator import run_emulator
from airflow_provider_magicvideo.emulator.pytest_plugin import (  # noqa: F401
    magicvideo_emulator,
    magicvideo_emulator_session,
)
from airflow_provider_magicvideo.emulator.server import EmulatorThread


@pytest.fixture
def emulator(magicvideo_emulator):  # noqa: F811 - short alias
    return magicvideo_emulator


@pytest.fixture(scope="session")
def fast_emulator_session() -> Iterator[EmulatorThread]:
    """Tiny pre-encoded clips and a 10 s render clock: tests drive time with the emulator's clock."""
    with run_emulator(render="fast", render_seconds=10.0) as server:
        yield server


@pytest.fixture
def fast(fast_emulator_session: EmulatorThread) -> Iterator[EmulatorThread]:
    """The fast emulator, reset (jobs, log rows, faults, clock back to wall time) around each test."""
    fast_emulator_session.reset()
    yield fast_emulator_session
    fast_emulator_session.reset()
