"""Helpers shared by the operator and sensor tests that run the DAGs of ``operator_test_dags.py``.

Not a DAG file (the test bundle parses it and finds none); it only reads the metadata DB.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

DAG_FILE = Path(__file__).resolve().with_name("operator_test_dags.py")
#: The key conftest.magicvideo_conn puts in the connection (module-scoped fixtures cannot use ``api_key``).
TEST_API_KEY = "sk-test-Zr4nd0mK3yThatMustNeverLeak9"


def load_dags():
    """Import the DAG file once (dag.test() runs the tasks of these very objects, in this process)."""
    name = "operator_test_dags"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, DAG_FILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    module = sys.modules[name]
    from tests.airflow_compat import record_failures  # not at import time: the test bundle parses this file

    record_failures(module.FAILURES)
    return module


def conn_env(base_url: str, conn_id: str = "magicvideo_default", key: str = TEST_API_KEY) -> tuple[str, str]:
    """(name, value) of the AIRFLOW_CONN_ variable for a magicvideo connection (for MonkeyPatch.setenv)."""
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
        {"conn_type": "magicvideo", "host": base_url, "password": key, "extra": {"max_retries": 1, "allow_insecure_video_urls": True}})


def tis(dr) -> dict[tuple[str, int], Any]:
    return {(ti.task_id, ti.map_index): ti for ti in dr.get_task_instances()}


def xcom(dr, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(XComModel.dag_id == dr.dag_id, XComModel.run_id == dr.run_id,
                                    XComModel.task_id == task_id, XComModel.key == key,
                                    XComModel.map_index == map_index)
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def all_xcoms(dr) -> list[tuple[str, str, Any]]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(select(XComModel).where(XComModel.dag_id == dr.dag_id,
                                                       XComModel.run_id == dr.run_id)).all()
        return [(row.task_id, row.key, XComModel.deserialize_value(row)) for row in rows]


def failure(dr, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
    """The exception text a try failed with (recorded by the listener ``load_dags`` registers)."""
    return load_dags().FAILURES.get((dr.dag_id, task_id, map_index, try_number), "")


class Spy:
    """Records the task ids a method ran for (a class patch sees dag.test()'s in-process tasks)."""

    def __init__(self, monkeypatch, cls: type, name: str) -> None:
        self.calls: list[tuple[str, dict]] = []
        original = getattr(cls, name)

        def spy(op, context, *args, **kwargs):
            self.calls.append((op.task_id, dict(kwargs)))
            return original(op, context, *args, **kwargs)

        monkeypatch.setattr(cls, name, spy)

    def task_ids(self) -> list[str]:
        return [task_id for task_id, _ in self.calls]
