"""``POST /_emulator/complete_pending``: release long renders on demand (benchmarks hold them until ready)."""

from __future__ import annotations

import time

from airflow_provider_magicvideo.emulator import run_emulator
from airflow_provider_magicvideo.emulator.testing import status, submit


def test_complete_pending_moves_completion_of_unfinished_jobs_only():
    with run_emulator(render_seconds=3600, render="fast") as emu:
        ids = [submit(emu.base_url, {"model": "magic/text-to-video", "prompt": "p"}).json()["id"] for _ in range(4)]
        time.sleep(0.3)  # fast renders finish their file almost at once; the deadline holds them
        assert {status(emu.base_url, gid).json()["status"] for gid in ids} <= {"queued", "waiting", "generating"}
        at = time.time() + 0.5
        assert emu.complete_pending(at=at, spread=1.0) == 4
        assert not emu.stats()["completed_at"]
        deadline = time.monotonic() + 10
        while len(emu.stats()["completed_at"]) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        completed = emu.stats()["completed_at"]
        assert sorted(completed) == sorted(ids)
        assert all(at - 0.01 <= completed[gid] <= at + 1.0 for gid in ids), completed
        assert {status(emu.base_url, gid).json()["status"] for gid in ids} == {"completed"}
        assert emu.complete_pending() == 0  # nothing left to move
