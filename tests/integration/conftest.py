"""The real-deployment tier: runs only with ``MAGICVIDEO_DEPLOYMENT_TIER=1`` (``make test-integration``).

Session-wide: one migrated template database (copied per deployment), the API key, two emulator
processes with ``--state-dir`` (``slow``: renders long enough to kill things mid-wait; ``fast``: the
fault matrix), and the results table, printed at the end and written to ``docs/reliability.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.results import RESULTS, record_row

ENABLED = os.environ.get("MAGICVIDEO_DEPLOYMENT_TIER") == "1"
EXECUTORS = [e for e in os.environ.get("MAGICVIDEO_IT_EXECUTORS", "LocalExecutor,CeleryExecutor").split(",") if e]
SLOW_RENDER_SECONDS = float(os.environ.get("MAGICVIDEO_IT_SLOW_RENDER", "45"))
FAST_RENDER_SECONDS = float(os.environ.get("MAGICVIDEO_IT_FAST_RENDER", "4"))
REPORT = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
DAGS = Path(__file__).resolve().parent / "dags"

_STARTED = time.monotonic()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deployment: the real-Airflow-deployment tier (MAGICVIDEO_DEPLOYMENT_TIER=1)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="deployment tier: run it with `make test-integration` (MAGICVIDEO_DEPLOYMENT_TIER=1)")
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


class Tier:
    """Everything shared by both deployments."""

    def __init__(self, tmp: Path) -> None:
        from airflow_provider_magicvideo.emulator.server import EmulatorProcess
        from tooling.deployment import migrate_template, pg_user, random_text

        self.api_key = "sk-it-" + random_text(24)
        self.user = pg_user()
        self.template = migrate_template(self.user)
        self.emulators = {}
        for name, seconds in (("slow", SLOW_RENDER_SECONDS), ("fast", FAST_RENDER_SECONDS)):
            self.emulators[name] = EmulatorProcess(
                render_seconds=seconds, render="fast", state_dir=tmp / f"emulator-{name}", keys=[self.api_key],
                log_path=tmp / f"emulator-{name}.log", log_level="warning",
            ).start()

    @property
    def conns(self) -> dict[str, str]:
        return {"magicvideo_default": self.emulators["slow"].base_url,
                "magicvideo_fast": self.emulators["fast"].base_url}

    def close(self) -> None:
        from tooling.deployment import drop_database

        for emulator in self.emulators.values():
            emulator.stop()
        drop_database(self.template, self.user)


@pytest.fixture(scope="session")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    shared = Tier(tmp_path_factory.mktemp("magicvideo-it"))
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture(scope="module", params=EXECUTORS)
def dep(request: pytest.FixtureRequest, tier: Tier) -> Iterator[Any]:
    from tooling.deployment import deployment

    started = time.monotonic()
    scenario = "deployment up (all processes running, REST healthy, DAGs parsed)"
    with contextlib.ExitStack() as stack:
        try:
            running = stack.enter_context(
                deployment(request.param, tier.conns, tier.api_key, tier.template, tier.user, DAGS))
            for dag_id in ("it_campaign", "it_faults", "it_deadline", "it_sync_wait"):
                running.wait_dag(dag_id)
        except Exception as exc:
            record_row(request.param, scenario, "-", "-", f"FAIL: {type(exc).__name__}: {str(exc)[:160]}",
                       time.monotonic() - started)
            raise
        record_row(request.param, scenario, "-", "-", "ok", time.monotonic() - started, f"api {running.api}")
        yield running


def _table() -> list[str]:
    lines = ["| executor | scenario | renders | POSTs | outcome | wall s | notes |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['executor']} | {r['scenario']} | {r['renders']} | {r['posts']} | {r['outcome']} | "
              f"{r['seconds']} | {r['notes']} |" for r in RESULTS]
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    terminalreporter.section("magicvideo deployment tier")
    for line in _table():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"total wall time: {time.monotonic() - _STARTED:.0f}s")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not RESULTS:
        return
    failed = [r for r in RESULTS if not r["outcome"].startswith(("ok", "PASS"))]
    text = [
        "# Reliability: the real-deployment tier",
        "",
        "Written by `make test-integration` (tests/integration) from its last run; do not edit by hand.",
        "",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on a "
        f"{os.cpu_count()}-core {platform.machine()} machine, Python {platform.python_version()}, "
        f"apache-airflow {_version('apache-airflow')}, celery provider {_version('apache-airflow-providers-celery')}. "
        f"Total wall time {time.monotonic() - _STARTED:.0f}s; pytest exit status {int(exitstatus)}; "
        f"{len(failed)} scenario(s) not passing.",
        "",
        "Deployment: PostgreSQL metadata DB (fresh database per deployment), `airflow api-server`, `scheduler`, "
        "`dag-processor`, two `triggerer`s (and `celery worker` with Redis as broker), every one a real "
        "process; DAG runs triggered and observed through the REST API v2 with a JWT from `POST /auth/token`. "
        f"Emulator processes with `--state-dir`: slow renders {SLOW_RENDER_SECONDS:g}s (deferral, failover, "
        f"worker crash), fast renders {FAST_RENDER_SECONDS:g}s (fault matrix). `parallelism` = 4.",
        "",
        "POSTs = job-creating submit POSTs the emulator counted for the run (one per render is the target; "
        "a failed POST that created nothing is not counted).",
        "",
        *_table(),
        "",
    ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(text))
    if os.environ.get("MAGICVIDEO_IT_JSON"):  # the version matrix reads the rows from here
        Path(os.environ["MAGICVIDEO_IT_JSON"]).write_text(json.dumps({"exitstatus": int(exitstatus), "rows": RESULTS}))


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"
