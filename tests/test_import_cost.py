"""What a task process pays to parse a DAG that uses the provider: every task process of a campaign imports
the operators (twice per render for a deferrable task), so a library only the triggerer needs must not be
imported with them (aiohttp alone is ~0.17 s of CPU per process; bench/results/campaign.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

WORKER_SIDE = [
    "airflow_provider_magicvideo.operators.magicvideo",
    "airflow_provider_magicvideo.operators.render",
    "airflow_provider_magicvideo.operators.deliver",
    "airflow_provider_magicvideo.operators.batch",
    "airflow_provider_magicvideo.sensors.magicvideo",
    "airflow_provider_magicvideo.triggers.magicvideo",  # built (not run) by a task that defers
    "airflow_provider_magicvideo.triggers.batch",
]


def imported_after(modules: list[str]) -> set[str]:
    code = ("import sys; " + "; ".join(f"import {m}" for m in modules)
            + "; print('\\n'.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True,
                         timeout=120)
    return set(out.stdout.split())


def test_parsing_a_dag_with_the_operators_does_not_import_the_triggers_http_client():
    loaded = imported_after(WORKER_SIDE)
    assert not {m for m in loaded if m == "aiohttp" or m.startswith("aiohttp.")}


@pytest.mark.parametrize("name", ["MagicVideoAsyncHook"])
def test_the_async_hook_is_still_importable_from_the_hooks_module(name):
    from airflow_provider_magicvideo.hooks import async_hook, magicvideo

    assert getattr(magicvideo, name) is getattr(async_hook, name)
    assert name in magicvideo.__all__
