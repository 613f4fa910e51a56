"""What `pip install` of a built wheel gives a user: the package, its licence and the example DAGs (with their
sample data), and nothing of the repository's test or bench tooling."""

from __future__ import annotations

import re
import tarfile
import zipfile
from pathlib import Path

import pytest

hatchling = pytest.importorskip("hatchling.builders.wheel", reason="hatchling is in the dev extra")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    [built] = hatchling.WheelBuilder(str(REPO)).build(directory=str(out), versions=["standard"])
    return Path(built)


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_version_comes_from_one_place(wheel: Path) -> None:
    from airflow_provider_magicvideo import __version__, get_provider_info

    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = archive.read(metadata).decode()
    assert f"\nVersion: {__version__}\n" in headers
    assert get_provider_info()["versions"] == [__version__]
    assert 'dynamic = ["version", "readme"]' in (REPO / "pyproject.toml").read_text()  # not a second copy
    assert f"## {__version__}" in (REPO / "CHANGELOG.md").read_text()


def description_of(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = archive.read(metadata).decode()
    assert "\nDescription-Content-Type: text/markdown\n" in headers
    return headers.split("\n\n", 1)[1]


def test_a_release_description_links_images_and_pages_absolutely(tmp_path: Path, monkeypatch) -> None:
    from airflow_provider_magicvideo import __version__

    monkeypatch.setenv("MAGICVIDEO_REPOSITORY", "https://github.com/example/airflow-provider-magicvideo/")
    [built] = hatchling.WheelBuilder(str(REPO)).build(directory=str(tmp_path), versions=["standard"])
    text = description_of(Path(built))
    base = f"https://github.com/example/airflow-provider-magicvideo/{{}}/v{__version__}/"
    assert f'<img src="{base.format("raw")}docs/images/ui-connection-test.png"' in text
    assert f"[`docs/security.md`]({base.format('blob')}docs/security.md)" in text
    # Nothing relative is left for an index page to break; outside links and anchors are untouched.
    assert not re.findall(r'\]\((?![a-z]+:|#)[^)]+\)|src="(?![a-z]+:)', text)
    readme = (REPO / "README.md").read_text()
    assert all(link in text for link in re.findall(r"\]\(((?:https?:|#)[^)]+)\)", readme))


def test_without_a_repository_address_the_description_is_the_readme(wheel: Path) -> None:
    assert description_of(wheel) == (REPO / "README.md").read_text()


def test_sdist_carries_the_dags_licence_changelog_and_tests(tmp_path: Path) -> None:
    from hatchling.builders.sdist import SdistBuilder

    [built] = SdistBuilder(str(REPO)).build(directory=str(tmp_path), versions=["standard"])
    with tarfile.open(built) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "hatch_build.py"} <= names
    assert {f"dags/{p.name}" for p in (REPO / "dags").glob("*.py")} <= names
    assert not {n for n in names if n.startswith((".venv/", ".compat/", ".artefacts/", "dist/"))}


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
