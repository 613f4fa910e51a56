"""Airflow itself discovers the provider: the CLI lists the package, the connection type and the links."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _airflow_json(*args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "airflow", *args, "-o", "json"], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=180, check=True)
    # Log lines may precede the JSON document on stdout; the document is the line that starts with "[{".
    [document] = [line for line in out.stdout.splitlines() if line.startswith("[{")]
    return json.loads(document)


@pytest.mark.integration
def test_airflow_providers_list_shows_the_package():
    [entry] = [p for p in _airflow_json("providers", "list") if p["package_name"] == "airflow-provider-magicvideo"]
    assert entry["version"] == "0.1.0"


@pytest.mark.integration
def test_airflow_providers_hooks_shows_the_connection_type():
    hooks = {h["connection_type"]: h for h in _airflow_json("providers", "hooks")}
    assert hooks["magicvideo"]["class"] == "airflow_provider_magicvideo.hooks.magicvideo.MagicVideoHook"
    assert hooks["magicvideo"]["hook_name"] == "AI/ML API Magic Video"


@pytest.mark.integration
def test_airflow_providers_links_shows_both_extra_links():
    links = {link["extra_link_class_name"] for link in _airflow_json("providers", "links")}
    assert {"airflow_provider_magicvideo.links.MagicVideoLink",
            "airflow_provider_magicvideo.links.MagicVideoDeliveredLink"} <= links


@pytest.mark.integration
def test_airflow_plugins_lists_the_redirect_app():
    plugins = {plugin["name"]: plugin for plugin in _airflow_json("plugins")}
    assert "magicvideo" in plugins
    assert "/magicvideo" in json.dumps(plugins["magicvideo"].get("fastapi_apps"))
