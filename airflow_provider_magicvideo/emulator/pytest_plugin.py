"""Pytest fixtures serving the emulator over a real socket.

Enable with ``pytest_plugins = ["airflow_provider_magicvideo.emulator.pytest_plugin"]`` in the root
conftest, or import the fixtures into a conftest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_magicvideo.emulator.server import EmulatorThread, run_emulator

# Fast timings with real (short) renders: a job completes about a second after its POST.
SESSION_CONFIG = {"render_seconds": 1.0, "render": "full", "duration": 1.0, "fps": 12}


@pytest.fixture(scope="session")
def magicvideo_emulator_session() -> Iterator[EmulatorThread]:
    """One emulator for the whole session (thread mode)."""
    with run_emulator(**SESSION_CONFIG) as server:
        yield server


@pytest.fixture
def magicvideo_emulator(magicvideo_emulator_session: EmulatorThread) -> Iterator[EmulatorThread]:
    """The session emulator, reset (jobs, counters, faults) before each test."""
    magicvideo_emulator_session.reset()
    yield magicvideo_emulator_session
    magicvideo_emulator_session.reset()
