"""A local S3 (moto's standalone server on 127.0.0.1) and the Airflow AWS connection that points at it.

``moto_s3()`` serves it from a thread of this process (tests); ``moto_process()`` runs it as its own process,
so the caller's RSS and CPU are only its own (the delivery benchmark). ``aws_connection()`` exposes an Airflow
connection to either for the ``with`` block; ``s3_client()`` is a boto3 client for checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from tooling.net import free_port

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


@contextlib.contextmanager
def moto_process(startup_timeout: float = 30) -> Iterator[str]:
    """Run ``python -m moto.server`` on a free loopback port for the ``with`` block; yields its endpoint."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"moto did not start; see {log.name}") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
