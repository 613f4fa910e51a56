"""Issue #20: the campaign benchmark's machinery in the deployment tier, small (``bench/campaign_run.py``).

One deployment of the benchmark (its own PostgreSQL database, LocalExecutor, one triggerer, the emulator in
its own process) renders N videos per path. Asserts counts only, never times: every render created exactly
once, every MP4 delivered and verified (size, sha256, ``ftyp``), the run successful. The wall-clock numbers
are the benchmark's business (``python -m bench.campaign``), not a test's.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.results import record_row

pytestmark = pytest.mark.deployment

N = 20  # the smoke size: big enough that the batch's bounded submits and deliveries overlap
PATHS = ("render_operator", "batch_operator")


@pytest.fixture(scope="module")
def campaign() -> dict[str, Any]:
    """path -> CampaignResult, all paths in one deployment (starting one costs more than the runs)."""
    from bench.campaign_paths import PATHS as KNOWN
    from bench.campaign_run import run_campaign

    started = time.monotonic()
    # A short render and poll keep the tier fast; a small parallelism as the rest of the tier uses.
    results = run_campaign([KNOWN[p] for p in PATHS], [N], render_s=5, poll_s=2, parallelism=4, timeout=900,
                           settle_s=2, warmup=False)
    by_path = {r.path: r for r in results}
    for r in results:
        if r.status != "skipped":
            record_row("LocalExecutor", f"campaign smoke: {r.path}, N={N} (bench.campaign)", r.renders_created,
                       r.total_posts, "PASS" if r.status == "ok" else f"FAIL: {'; '.join(r.problems)[:160]}",
                       time.monotonic() - started, f"{r.videos_verified}/{N} MP4s verified")
    return by_path


@pytest.mark.parametrize("path", PATHS)
def test_campaign_smoke(campaign: dict[str, Any], path: str) -> None:
    result = campaign[path]
    if result.status == "skipped":
        pytest.skip(result.problems[0])
    assert result.run_state == "success", result.problems
    assert result.renders_created == N, result.problems
    assert result.total_posts == N, "a render was paid for twice"
    assert result.videos_verified == N, result.problems
