"""Fail at import, with the supported range named, on an Apache Airflow this provider does not support.

Reads the installed distribution's metadata only (no ``import airflow``), so it is cheap and keeps the
package import light. Without Airflow installed (the emulator alone) there is nothing to check.
"""

from __future__ import annotations

import re
from importlib import metadata

SUPPORTED_AIRFLOW = ">=3.0.6,<4"  # keep equal to the apache-airflow requirement in pyproject.toml
TESTED_AIRFLOW = ("3.0.6", "3.1.8", "3.2.2", "3.3.2")  # the make test-compat matrix


def installed_airflow_version() -> str | None:
    for dist in ("apache-airflow-core", "apache-airflow"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _release(version: str) -> tuple[int, int, int]:
    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if not match:
        raise ValueError(version)
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]


def check_airflow_version(version: str | None = None) -> None:
    """Raise ``ImportError`` naming the supported range if the installed Airflow is outside it."""
    version = version if version is not None else installed_airflow_version()
    if version is None:
        return
    try:
        release = _release(version)
    except ValueError:
        return  # an unparseable dev build: let it through rather than guess
    if not ((3, 0, 6) <= release < (4, 0, 0)):
        raise ImportError(
            f"airflow-provider-magicvideo supports Apache Airflow {SUPPORTED_AIRFLOW} "
            f"(tested: {', '.join(TESTED_AIRFLOW)}); this environment has Apache Airflow {version}."
        )


def airflow_release(version: str | None = None) -> tuple[int, int, int] | None:
    """(major, minor, patch) of the installed Apache Airflow; ``None`` when absent or unparseable."""
    version = version if version is not None else installed_airflow_version()
    try:
        return None if version is None else _release(version)
    except ValueError:
        return None
