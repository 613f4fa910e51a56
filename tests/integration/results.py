"""The tier's results table: one row per scenario and executor (shared by conftest and the tests)."""

from __future__ import annotations

from typing import Any

RESULTS: list[dict[str, Any]] = []


def record_row(executor: str, scenario: str, renders: Any, posts: Any, outcome: str, seconds: float,
               notes: str = "") -> None:
    RESULTS.append({"executor": executor.replace("Executor", ""), "scenario": scenario, "renders": renders,
                    "posts": posts, "outcome": outcome, "seconds": round(seconds), "notes": notes})
