"""The campaign benchmark's paths: one DAG each under ``bench/dags/campaign/``, one entry here.

Adding a path (e.g. a new operator) is one DAG file plus one ``CampaignPath`` below. ``requires`` names a class the
path's DAG imports: when it cannot be imported in this checkout, the benchmark skips the path and says why (its
DAG file then defines no DAG, so the dag-processor records no import error either).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

DAGS = Path(__file__).resolve().parent / "dags" / "campaign"


@dataclass(frozen=True)
class CampaignPath:
    name: str
    description: str  # what one row costs in task instances, for the results table
    requires: str | None = None  # "module:Class" the DAG needs

    @property
    def dag_id(self) -> str:
        return f"bench_campaign_{self.name}"

    def unavailable(self) -> str | None:
        """Why the path cannot run here, or None."""
        if self.requires is None:
            return None
        module, _, name = self.requires.partition(":")
        try:
            getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            return f"{self.requires} is not importable ({type(exc).__name__}: {exc})"
        return None


PATHS: dict[str, CampaignPath] = {p.name: p for p in (
    CampaignPath("three_tasks", "submit → deferrable MagicVideoSensor → deliver, per row"),
    CampaignPath("two_tasks", "submit (wait_for_completion, deferrable) → deliver, per row"),
    CampaignPath("render_operator", "one MagicVideoRenderOperator per row (submit, defer, deliver)"),
    CampaignPath("batch_operator", "one MagicVideoBatchRenderOperator for all rows",
                 requires="airflow_provider_magicvideo.operators.batch:MagicVideoBatchRenderOperator"),
)}
