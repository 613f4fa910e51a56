"""A local S3 (moto's standalone server on 127.0.0.1) for delivery tests and the delivery benchmark.

``moto_s3()`` starts the server in a thread and yields its endpoint URL; ``aws_connection_uri()``
builds the Airflow AWS connection JSON that points s3fs/boto3 at it; the ``s3_endpoint`` fixture
(session-wide) combines both and exposes connection ``aws_test`` via ``AIRFLOW_CONN_AWS_TEST``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

AWS_CONN_ID = "aws_test"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """Serve moto on a free loopback port for the ``with`` block; yields ``http://127.0.0.1:<port>``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_connection_uri(endpoint: str) -> str:
    """The ``AIRFLOW_CONN_<ID>`` value of an AWS connection that talks to ``endpoint``."""
    return json.dumps({
        "conn_type": "aws", "login": CREDENTIALS["aws_access_key_id"],
        "password": CREDENTIALS["aws_secret_access_key"],
        "extra": {"endpoint_url": endpoint, "region_name": REGION},
    })


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)


def forget_store(conn_id: str = AWS_CONN_ID) -> None:
    """Drop Airflow's cached s3 filesystem for ``conn_id`` (it remembers the endpoint)."""
    with contextlib.suppress(Exception):
        from airflow.sdk.io import store

        for alias in [a for a in store._STORE_CACHE if a.endswith(f"-{conn_id}") or a == conn_id]:
            del store._STORE_CACHE[alias]


@contextlib.contextmanager
def aws_connection(endpoint: str, conn_id: str = AWS_CONN_ID) -> Iterator[str]:
    """Expose ``conn_id`` as an Airflow connection to ``endpoint`` (env var) for the ``with`` block."""
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    previous = os.environ.get(name)
    os.environ[name] = aws_connection_uri(endpoint)
    forget_store(conn_id)
    try:
        yield conn_id
    finally:
        forget_store(conn_id)
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A session-wide moto S3 server, with Airflow connection ``aws_test`` pointing at it."""
    with moto_s3() as endpoint, aws_connection(endpoint):
        yield endpoint
