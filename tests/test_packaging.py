"""What `pip install` of a built wheel gives a user: the package, its licence and the example DAGs (with their
sample data), and nothing of the repository's test or bench tooling."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

hatchling = pytest.importorskip("hatchling.builders.wheel", reason="hatchling is in the dev extra")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    [wheel] = hatchling.WheelBuilder(str(REPO)).build(directory=str(out), versions=["standard"])
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_wheel_carries_the_apache_license(wheel_names: set[str]) -> None:
    licences = [n for n in wheel_names if ".dist-info/licenses/" in n]
    assert any(n.endswith("/LICENSE") for n in licences), licences
    assert "Apache License" in (REPO / "LICENSE").read_text()[:200]


def test_wheel_ships_the_example_dags_and_their_data(wheel_names: set[str]) -> None:
    for dag in sorted(p.name for p in (REPO / "dags").glob("*.py")):
        assert f"airflow_provider_magicvideo/example_dags/{dag}" in wheel_names
    for data in sorted(p.relative_to(REPO / "dags") for p in (REPO / "dags" / "data").rglob("*") if p.is_file()):
        assert f"airflow_provider_magicvideo/example_dags/{data.as_posix()}" in wheel_names


def test_wheel_leaves_out_tests_and_tooling(wheel_names: set[str]) -> None:
    tops = {n.split("/", 1)[0] for n in wheel_names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"airflow_provider_magicvideo"}
