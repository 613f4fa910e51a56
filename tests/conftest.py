"""Test-wide setup: an isolated, throwaway Airflow home (set before Airflow is imported) and fixtures."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# A test module that imports ``tests.conftest`` runs this file a second time: reuse the first home, or the
# environment would point Airflow at a second, unmigrated database halfway through the session. Each
# pytest-xdist worker (`make unit` runs two) has its own home and SQLite database.
_HOME_VAR = "MAGICVIDEO_TEST_AIRFLOW_HOME_" + os.environ.get("PYTEST_XDIST_WORKER", "main").upper()
_HOME = Path(os.environ.get(_HOME_VAR) or tempfile.mkdtemp(prefix="magicvideo-airflow-home-"))
os.environ[_HOME_VAR] = str(_HOME)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
_REPO = Path(__file__).resolve().parents[1]
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_REPO / "dags")
# dag.test() looks DAGs up in the configured bundles: the shipped examples and the side-effect-free
# test DAGs (tests/dag_files, parametrised through run_conf).
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps([
    {"name": name, "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {"path": str(path)}}
    for name, path in (("example-dags", _REPO / "dags"), ("test-dags", _REPO / "tests" / "dag_files"))
])

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_API_KEY = "sk-test-Zr4nd0mK3yThatMustNeverLeak9"

pytest_plugins = ["airflow_provider_magicvideo.emulator.pytest_plugin"]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB in the throwaway AIRFLOW_HOME (needed by dag.test())."""
    marker = _HOME / ".migrated"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, env=os.environ.copy(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        marker.touch()
    return _HOME


@pytest.fixture
def api_key() -> str:
    return TEST_API_KEY


@pytest.fixture
def magicvideo_conn(monkeypatch: pytest.MonkeyPatch):
    """Point ``magicvideo_default`` at ``base_url`` (default: an address nothing listens on)."""

    def _set(base_url: str = "http://127.0.0.1:9/v2", conn_id: str = "magicvideo_default", **extra) -> str:
        import json

        extra = {"allow_insecure_video_urls": True, **extra}  # the emulator serves http on loopback
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps({"conn_type": "magicvideo", "host": base_url, "password": TEST_API_KEY, "extra": extra}),
        )
        return conn_id

    return _set


@pytest.fixture
def no_shared_session_leak():
    """Fail a test that leaves a shared aiohttp session open (and clear it so the next test starts clean)."""
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoAsyncHook
    from airflow_provider_magicvideo.hooks.session_pool import SessionPool

    yield
    stats = MagicVideoAsyncHook.pool.stats()
    if stats["sessions"]:
        MagicVideoAsyncHook.pool = SessionPool()  # the next test starts clean
    assert stats["sessions"] == 0, f"shared sessions left open: {stats}"


@pytest.fixture
def mocked(monkeypatch):
    """An ``aioresponses`` mock that works with the installed aiohttp.

    aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp >= 3.14 requires
    (https://github.com/pnuckowski/aioresponses/issues/289); give them a stub with ``output_size``.
    """
    from types import SimpleNamespace

    import aiohttp
    from aioresponses import aioresponses
    from aioresponses import core as aioresponses_core

    class StreamWriterCompatResponse(aiohttp.ClientResponse):
        def __init__(self, *args, stream_writer=None, **kwargs):
            super().__init__(*args, stream_writer=stream_writer or SimpleNamespace(output_size=0), **kwargs)

    monkeypatch.setattr(aioresponses_core, "ClientResponse", StreamWriterCompatResponse)
    with aioresponses() as mock:
        yield mock


# ------------------------------------------------------------------------------------------ metrics
class RecordingStats:
    """A Stats backend that keeps every call: ``(kind, name, value, tags)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any, dict[str, Any]]] = []

    def incr(self, stat: str, count: int = 1, rate: float = 1, *, tags: dict[str, Any] | None = None) -> None:
        self.calls.append(("incr", stat, count, dict(tags or {})))

    def decr(self, stat: str, count: int = 1, rate: float = 1, *, tags: dict[str, Any] | None = None) -> None:
        self.calls.append(("decr", stat, count, dict(tags or {})))

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False, *,
              tags: dict[str, Any] | None = None) -> None:
        self.calls.append(("gauge", stat, value, dict(tags or {})))

    def timing(self, stat: str, dt: Any, *, tags: dict[str, Any] | None = None) -> None:
        self.calls.append(("timing", stat, dt, dict(tags or {})))

    def timer(self, stat: str | None = None, *args: Any, **kwargs: Any) -> Any:
        class Timer(contextlib.nullcontext):  # what Airflow's own code (e.g. secrets backends) times
            duration = 0.0

            def __enter__(self) -> Timer:
                return self

            def start(self) -> Timer:
                return self

            def stop(self, send: bool = True) -> None:
                pass

        return Timer()

    def ours(self) -> list[tuple[str, str, Any, dict[str, Any]]]:
        return [call for call in self.calls if call[1].startswith("magicvideo.")]


@pytest.fixture
def stats(monkeypatch: pytest.MonkeyPatch) -> RecordingStats:
    """Install the recorder behind Airflow's own ``Stats``, so the real shim (tags, counts) is exercised."""
    from airflow.providers.common.compat.sdk import Stats

    recorder = RecordingStats()
    module = sys.modules[Stats.__module__]
    if hasattr(module, "_get_backend"):  # Airflow >= 3.3: module-level backend behind a class shim
        monkeypatch.setattr(module, "_backend", recorder)
    else:  # Airflow 3.0-3.2: the Stats metaclass delegates to Stats.instance
        monkeypatch.setattr(Stats, "instance", recorder)
    return recorder
