"""The import-time Airflow version check: the supported range, and that it matches the package metadata."""

from __future__ import annotations

from importlib import metadata

import pytest

from airflow_provider_magicvideo.version_check import SUPPORTED_AIRFLOW, check_airflow_version


@pytest.mark.parametrize("version", ["2.11.0", "3.0.5", "4.0.0", "4.0.0.dev0"])
def test_unsupported_airflow_fails_naming_the_range(version):
    with pytest.raises(ImportError, match=r">=3\.0\.6,<4") as err:
        check_airflow_version(version)
    assert version in str(err.value)


@pytest.mark.parametrize("version", ["3.0.6", "3.1.8", "3.2.2", "3.3.2", "3.9.0rc1"])
def test_supported_airflow_passes(version):
    check_airflow_version(version)


def test_the_installed_airflow_passes():
    check_airflow_version()


def test_range_matches_the_distribution_requirement():
    requires = [r for r in metadata.requires("airflow-provider-magicvideo") or [] if r.startswith("apache-airflow")]
    specs = {r.split(";")[0].replace(" ", "") for r in requires}
    assert SUPPORTED_AIRFLOW == ">=3.0.6,<4"
    assert specs & {"apache-airflow<4,>=3.0.6", "apache-airflow>=3.0.6,<4"}, specs
