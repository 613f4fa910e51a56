"""Imported by every Airflow process of ``python -m bench.trigger_scale --triggerer`` (``bench/preload`` is on its
``PYTHONPATH``): before any fork, import what the bench DAG's tasks and triggers need.

LocalExecutor workers and task processes, and the triggerer's trigger-runner subprocess, are forked: with
these modules already imported in the parent, each of the N task processes skips ~1 s of imports while it
parses the DAG file, so the N task instances reach ``deferred`` faster. The triggerer's RSS baseline then
includes these imports (taken before the run, as for a triggerer that has served such triggers before).
"""

from __future__ import annotations

import os

_MODULES = (
    "airflow_provider_magicvideo.sensors.magicvideo",
    "airflow_provider_magicvideo.triggers.magicvideo",
    "airflow.providers.http.triggers.http",
    "airflow.providers.http.hooks.http",
)
_done = False


def _preload() -> None:
    global _done
    if _done:
        return
    _done = True
    import contextlib
    import importlib

    for name in _MODULES:
        with contextlib.suppress(Exception):  # never break the process being forked
            importlib.import_module(name)


os.register_at_fork(before=_preload)
