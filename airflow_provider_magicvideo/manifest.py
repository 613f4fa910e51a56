"""``manifest.json`` of a batch render: what became of every row, written next to the videos.

The schema is a contract (a gallery page reads exactly it); add fields, never rename or drop one::

    {"task": "<dag>.<task>[<map_index>]", "generated_at": "<ISO 8601 UTC>", "credits_used": <int>,
     "rows": [{"key", "template", "model", "generation_id",
               "status": "delivered" | "failed" | "invalid" | "pending",
               "uri", "size", "sha256", "credits_used", "error"}]}

Missing values are ``null``. ``error`` is the API's ``name: message`` for a row whose generation failed, the
delivery's message for one that could not be delivered, the validation message for an invalid row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from airflow_provider_magicvideo.delivery import as_destination, str_uri
from airflow_provider_magicvideo.hooks.polling import iso

RowStatus = Literal["delivered", "failed", "invalid", "pending"]
ROW_KEYS = ("key", "template", "model", "generation_id", "status", "uri", "size", "sha256", "credits_used",
            "error")
MANIFEST_NAME = "manifest.json"


def task_label(dag_id: str, task_id: str, map_index: int | None = None) -> str:
    """``dag.task`` or, for a mapped task instance, ``dag.task[3]``."""
    suffix = f"[{map_index}]" if map_index is not None and map_index >= 0 else ""
    return f"{dag_id}.{task_id}{suffix}"


def build_manifest(task: str, rows: Iterable[Mapping[str, Any]], *, generated_at: float | None = None
                   ) -> dict[str, Any]:
    """The manifest dict: every row with exactly :data:`ROW_KEYS` (absent ones ``None``), and the credits of
    all rows (a generation that ended in ``error`` is free, so its row says 0)."""
    listed = [{name: row.get(name) for name in ROW_KEYS} for row in rows]
    credits = sum(int(row["credits_used"]) for row in listed if row["credits_used"] is not None)
    return {"task": task, "generated_at": iso(time.time() if generated_at is None else generated_at),
            "credits_used": credits, "rows": listed}


def write_manifest(folder_or_path: Any, manifest: Mapping[str, Any], conn_id: str | None = None) -> str:
    """Write ``manifest`` as JSON to a folder's ``manifest.json`` (or to a path ending in ``.json``) through
    ObjectStoragePath, and return its URI."""
    text = str(folder_or_path)
    target = as_destination(text if text.endswith(".json") else f"{text.rstrip('/')}/{MANIFEST_NAME}", conn_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return str_uri(target)


__all__ = ["MANIFEST_NAME", "ROW_KEYS", "RowStatus", "build_manifest", "task_label", "write_manifest"]
