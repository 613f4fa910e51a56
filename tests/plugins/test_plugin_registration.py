"""The plugin is found the way Airflow finds it (the ``airflow.plugins`` entry point) and mounted by the api-server."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from airflow_provider_magicvideo.plugins import LazyVideoRedirectApp, MagicVideoPlugin

JWT_SECRET = "test-jwt-secret-for-the-plugin-registration-test-" + "x" * 40


def test_the_entry_point_names_the_plugin():
    entry_points = [ep for ep in importlib.metadata.entry_points(group="airflow.plugins") if ep.name == "magicvideo"]
    if not entry_points:
        pytest.skip("the distribution is not installed (pip install -e .)")
    (entry_point,) = entry_points
    assert entry_point.load() is MagicVideoPlugin


def test_airflow_loads_it_with_the_redirect_app_outside_the_reserved_prefixes():
    from airflow import plugins_manager
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES

    plugins_manager.ensure_plugins_loaded()
    assert "magicvideo" in [plugin.name for plugin in plugins_manager._get_plugins()[0]]
    apps, _ = plugins_manager.get_fastapi_plugins()
    (ours,) = [app for app in apps if isinstance(app["app"], LazyVideoRedirectApp)]
    assert ours["url_prefix"] == "/magicvideo"
    assert not any(ours["url_prefix"].startswith(prefix) for prefix in RESERVED_URL_PREFIXES)


def test_loading_the_plugin_imports_nothing_of_the_api_server():
    """Every Airflow process loads plugins, task processes included: the module must stay light."""
    code = ("import sys; import airflow_provider_magicvideo.plugins; "
            "print(sorted(m for m in sys.modules if m.startswith(('airflow.api_fastapi', 'fastapi'))))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.integration
def test_airflows_own_api_server_app_serves_the_route_and_refuses_anonymous_requests(airflow_db, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", JWT_SECRET)
    from airflow.api_fastapi.app import create_app, purge_cached_app

    try:
        client = TestClient(create_app("core"), follow_redirects=False)
        answer = client.get("/magicvideo/dags/d/runs/r/tasks/t/video")
        assert answer.status_code == 401, answer.text  # our route, refused by Airflow's auth (not the UI's 404)
        assert answer.json() == {"detail": "Not authenticated"}
    finally:
        purge_cached_app()


def test_on_airflow_30_the_ui_cookie_is_handed_over_as_the_bearer_header():
    from airflow_provider_magicvideo.plugins import cookie_as_bearer

    scope = {"type": "http", "headers": [(b"cookie", b"theme=dark; _token=eyJ.abc.def")]}
    assert cookie_as_bearer(scope)["headers"][-1] == (b"authorization", b"Bearer eyJ.abc.def")
    explicit = {"type": "http", "headers": [(b"authorization", b"Bearer other"), (b"cookie", b"_token=eyJ")]}
    assert cookie_as_bearer(explicit) is explicit  # an explicit credential wins, as in Airflow >= 3.1
    for headers in ([], [(b"cookie", b"theme=dark")], [(b"cookie", b"_token=")]):
        scope = {"type": "http", "headers": headers}
        assert cookie_as_bearer(scope) is scope
