"""Keeps ``bench.trigger_scale`` from rotting: its --smoke mode (N=20, poll 1 s, render 2 s)."""

from __future__ import annotations

import math

import pytest

from bench import trigger_scale

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smoke_results():
    return trigger_scale.main(["--smoke"])


def test_every_contender_gets_n_success_events(smoke_results):
    results = smoke_results
    assert sorted(r.contender for r in results) == ["http", "magicvideo", "sample"]
    for r in results:
        assert r.n == 20
        assert r.ok == r.n, (r.contender, r.problems)
        assert r.events == r.n, (r.contender, r.problems)
        assert not r.problems, (r.contender, r.problems)


def test_metrics_are_positive_numbers(smoke_results):
    for r in smoke_results:
        metrics = {
            "polls": r.polls, "cpu_s": r.cpu_s, "cpu_per_poll_ms": r.cpu_per_poll_ms, "rss_base_mb": r.rss_base_mb,
            "rss_peak_mb": r.rss_peak_mb, "connects": r.connects, "req_per_s": r.req_per_s, "p50_s": r.p50_s,
            "p99_s": r.p99_s, "emu_cpu_s": r.emu_cpu_s, "wall_s": r.wall_s,
        }
        for name, value in metrics.items():
            assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (r.contender, name, value)
        assert r.rss_peak_mb >= r.rss_base_mb
        # every wait polled at least until its render completed (2 s render, 1 s poll)
        assert r.polls >= r.n * 2, (r.contender, r.polls)


def test_the_project_trigger_reuses_connections(smoke_results):
    by = {r.contender: r for r in smoke_results}
    # MagicVideoTrigger shares one bounded aiohttp session; the others open one TCP connection per poll.
    assert by["magicvideo"].connects <= 32 < by["magicvideo"].polls
    assert by["http"].connects >= by["http"].polls
