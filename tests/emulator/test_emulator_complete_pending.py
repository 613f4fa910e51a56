"""``POST /_emulator/complete_pending``: release long renders on demand (benchmarks hold them until ready)."""

from __future__ import annotations

import pytest

from airflow_provider_magicvideo.emulator import run_emulator
from airflow_provider_magicvideo.emulator.testing import status, submit, wait_status


def test_complete_pending_moves_completion_of_unfinished_jobs_only():
    with run_emulator(render_seconds=3600, render="fast") as emu:
        now = emu.pause_clock()
        ids = [submit(emu.base_url, {"model": "magic/text-to-video", "prompt": "p"}).json()["id"] for _ in range(4)]
        assert {status(emu.base_url, gid).json()["status"] for gid in ids} == {"queued"}
        at = now + 0.5
        assert emu.complete_pending(at=at, spread=1.0) == 4
        assert not emu.stats()["completed_at"]  # the paused clock has not reached ``at`` yet
        emu.advance_clock(1.5)  # past the last one (at + 0.75)
        for gid in ids:
            wait_status(emu.base_url, gid, "completed")
        completed = emu.stats()["completed_at"]
        assert sorted(completed) == sorted(ids)
        assert sorted(completed.values()) == pytest.approx([at, at + 0.25, at + 0.5, at + 0.75])  # even spread
        assert emu.complete_pending() == 0  # nothing left to move
