"""What the tests need to run the same way on every supported Airflow line (3.0 to 3.3).

Each shim makes ``dag.test()`` behave as a deployment does on the older lines; none of them changes what a
test checks:

* :func:`dagbag_class`: ``DagBag`` is in ``airflow.dag_processing.dagbag`` from 3.2, in ``airflow.models.dagbag``
  on 3.0 and 3.1.
* :func:`dag_test`: from 3.1, ``dag.test()`` first writes the DAG's bundle to the metadata DB when the DAG has
  no version there yet, as the DAG processor does for a deployed DAG. 3.0's does not, so the DAG's assets are
  never activated and every task with an ``Asset`` outlet fails before it starts
  (``AirflowInactiveAssetInInletOrOutletException``). On 3.0 this does that step first, with 3.0's API.
* :func:`dag_test` also keeps one in-process execution API per process, as 3.3's ``dag.test()`` does
  (``functools.lru_cache`` on ``supervisor.in_process_api_server``). Below 3.3 every task run builds a new one,
  and its first request costs 2-3 s (the versioned routes are generated again): a speed fix only.
* :func:`record_failures`: a task's callbacks find the exception in ``context["exception"]`` in a deployment,
  but ``dag.test()`` below 3.3 runs tasks in process without setting it (callbacks see ``None``). The listener
  hook ``on_task_instance_failed`` gets the error from every runner on every line, so failures are read
  from there.
* :func:`without_airflow_30_mask_secret_echo`: the one line in which Airflow 3.0's ``dag.test()`` itself logs
  a connection's password at DEBUG.
"""

from __future__ import annotations

import functools
import re
from collections.abc import MutableMapping
from importlib import metadata
from typing import Any

from airflow.listeners import hookimpl
from packaging.version import Version

AIRFLOW_VERSION = Version(metadata.version("apache-airflow"))
AIRFLOW_3_0 = AIRFLOW_VERSION.release[:2] == (3, 0)


def dagbag_class() -> type:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ModuleNotFoundError:  # Airflow 3.0 and 3.1
        from airflow.models.dagbag import DagBag
    return DagBag


def _sync_bundles_like_airflow_3_1(dag_id: str) -> None:
    """What 3.1's ``dag.test()`` does before it runs a DAG that has no version in the DB (3.0 API)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dag_version import DagVersion

    if DagVersion.get_version(dag_id):
        return
    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = dagbag_class()(dag_folder=bundle.path, bundle_path=bundle.path, include_examples=False)
        bag.sync_to_db(bundle.name, bundle.version)
        if DagVersion.get_version(dag_id):
            return


def dag_test(dag: Any, **kwargs: Any) -> Any:
    """``dag.test(**kwargs)``, with the DAG registered in the metadata DB first on Airflow 3.0 (see above)."""
    if AIRFLOW_3_0:
        _sync_bundles_like_airflow_3_1(dag.dag_id)
    _one_in_process_api_server()
    return dag.test(**kwargs)


def _one_in_process_api_server() -> None:
    from airflow.sdk.execution_time import supervisor

    if not hasattr(supervisor.in_process_api_server, "cache_info"):  # Airflow < 3.3
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(supervisor.in_process_api_server)


class _FailureListener:
    """Records (dag_id, task_id, map_index, try_number) -> the text of the exception that try failed with."""

    def __init__(self, failures: MutableMapping[tuple[str, str, int, int], str]) -> None:
        self.failures = failures

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        ti = task_instance
        self.failures[(ti.dag_id, ti.task_id, ti.map_index, ti.try_number)] = str(error)


def _listener_manager() -> Any:
    try:
        from airflow.sdk.listener import get_listener_manager  # Airflow >= 3.2
    except ModuleNotFoundError:
        from airflow.listeners.listener import get_listener_manager
    return get_listener_manager()


_listeners: dict[int, _FailureListener] = {}


def record_failures(failures: MutableMapping[tuple[str, str, int, int], str]) -> None:
    """Fill ``failures`` from every failed or retried try run in this process (calling it again is harmless)."""
    listener = _listeners.setdefault(id(failures), _FailureListener(failures))
    _listener_manager().add_listener(listener)


def without_airflow_30_mask_secret_echo(text: str, secret: str) -> str:
    """``text`` without the lines Airflow 3.0's ``dag.test()`` itself logs at DEBUG for a connection's password.

    On 3.0 ``mask_secret`` sends the secret to the supervisor *before* it registers the mask, and the in-process
    comms of ``dag.test()`` (only there: a deployment's supervisor omits that message's body) log every message
    sent, so the key shows once, unmasked, as ``Sending request msg=MaskSecret(value='…')``. 3.1 registers the
    mask first. Only that exact line is dropped, and only on 3.0; any other line with the secret stays.
    """
    if not AIRFLOW_3_0:
        return text
    echo = re.compile(rf"Sending request\s+msg=MaskSecret\(value={re.escape(repr(secret))}, name=None, "
                      r"type='MaskSecret'\)")
    return "".join(line for line in text.splitlines(keepends=True) if not echo.search(line))
