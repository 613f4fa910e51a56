"""What the tests need to run the same way on every supported Airflow line (3.0 to 3.3).

Each shim makes ``dag.test()`` behave as a deployment does on the older lines; none of them changes what a
test checks:

* :func:`dagbag_class`: ``DagBag`` is in ``airflow.dag_processing.dagbag`` from 3.2, in ``airflow.models.dagbag``
  on 3.0 and 3.1.
* :func:`dag_test`: from 3.1, ``dag.test()`` first writes the DAG's bundle to the metadata DB when the DAG has
  no version there yet, as the DAG processor does for a deployed DAG. 3.0's does not, so the DAG's assets are
  never activated and every task with an ``Asset`` outlet fails before it starts
  (``AirflowInactiveAssetInInletOrOutletException``). On 3.0 this does that step first, with 3.0's API.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

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
    return dag.test(**kwargs)
