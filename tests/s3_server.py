"""The pytest side of ``tooling.s3``: a session-wide moto S3 server for the delivery tests.

``s3_endpoint`` yields the server's endpoint URL with Airflow connection ``aws_test`` pointing at it
(``AIRFLOW_CONN_AWS_TEST``); import it into a test module to use it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tooling.s3 import aws_connection, moto_s3


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A session-wide moto S3 server, with Airflow connection ``aws_test`` pointing at it."""
    with moto_s3() as endpoint, aws_connection(endpoint):
        yield endpoint
