"""Tooling shared by the tests and the benchmarks: an Airflow deployment, moto S3, process sampling, results.

Not part of the provider (the wheel packages only ``airflow_provider_magicvideo``). It is found from the
repository root: pytest puts the root on ``sys.path`` (``pythonpath = ["."]`` in ``pyproject.toml``) and the
benchmarks run as modules from the root (``python -m bench.trigger_scale``), so nothing patches ``sys.path``.

- ``tooling.net``: free loopback ports, ``wait_for``.
- ``tooling.deployment``: a real Airflow deployment on PostgreSQL (api-server, scheduler, triggerers, ...).
- ``tooling.s3``: moto's S3 server (in a thread or as its own process) and the Airflow connection to it.
- ``tooling.sampling``: CPU, RSS, fds and sockets of a process (tree); ``RssPeak`` for this process.
- ``tooling.results``: result records, percentiles and the generated part of ``bench/results/*.md``.
"""
