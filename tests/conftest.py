"""Test-wide setup: an isolated, throwaway Airflow home (set before Airflow is imported) and fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="magicvideo-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_API_KEY = "sk-test-Zr4nd0mK3yThatMustNeverLeak9"

pytest_plugins = ["airflow_provider_magicvideo.emulator.pytest_plugin"]


@pytest.fixture
def api_key() -> str:
    return TEST_API_KEY


@pytest.fixture
def magicvideo_conn(monkeypatch: pytest.MonkeyPatch):
    """Point ``magicvideo_default`` at ``base_url`` (default: an address nothing listens on)."""

    def _set(base_url: str = "http://127.0.0.1:9/v2", conn_id: str = "magicvideo_default", **extra) -> str:
        import json

        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps({"conn_type": "magicvideo", "host": base_url, "password": TEST_API_KEY, "extra": extra}),
        )
        return conn_id

    return _set
