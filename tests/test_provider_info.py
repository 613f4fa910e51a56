"""Provider metadata: shape, connection form, and that every module and class it names really imports."""

from __future__ import annotations

import importlib
import importlib.metadata
import json

import pytest

import airflow_provider_magicvideo
from airflow_provider_magicvideo import get_provider_info

INFO = get_provider_info()


def _python_modules() -> list[str]:
    return [
        module
        for section in ("hooks", "operators", "sensors", "triggers")
        for entry in INFO[section]
        for module in entry["python-modules"]
    ]


def _class_paths() -> list[str]:
    return [*INFO["extra-links"], *(ct["hook-class-name"] for ct in INFO["connection-types"])]


def _import_class(path: str):
    module_name, _, class_name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def test_basic_fields():
    assert INFO["package-name"] == "airflow-provider-magicvideo"
    assert INFO["versions"] == [airflow_provider_magicvideo.__version__]
    assert INFO["name"]
    assert INFO["description"]
    integrations = {i["integration-name"] for i in INFO["integrations"]}
    for section in ("hooks", "operators", "sensors", "triggers"):
        assert INFO[section], section
        assert {entry["integration-name"] for entry in INFO[section]} <= integrations


def test_the_distribution_version_matches():
    try:
        version = importlib.metadata.version("airflow-provider-magicvideo")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the distribution is not installed (pip install -e .)")
    assert INFO["versions"] == [version]


def test_connection_type():
    (conn_type,) = INFO["connection-types"]
    assert conn_type["connection-type"] == "magicvideo"
    hook_class = _import_class(conn_type["hook-class-name"])
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook

    assert hook_class is MagicVideoHook
    assert hook_class.conn_type == "magicvideo"
    assert hook_class.hook_name == conn_type["hook-name"]
    assert hook_class.default_conn_name == "magicvideo_default"


def test_ui_field_behaviour():
    behaviour = INFO["connection-types"][0]["ui-field-behaviour"]
    assert set(behaviour["hidden-fields"]) == {"login", "schema"}
    assert behaviour["relabeling"]["password"] == "API key"
    assert behaviour["relabeling"]["port"] == "API port"
    assert behaviour["placeholders"]["port"].startswith("443")
    assert "password" not in behaviour["hidden-fields"]
    assert "host" not in behaviour["hidden-fields"]


def _saved_through_the_form(typed: dict) -> dict:
    """What Airflow's Add Connection form stores: a hidden field cannot be filled, so it is stored NULL."""
    hidden = set(INFO["connection-types"][0]["ui-field-behaviour"]["hidden-fields"])
    return {name: None if name in hidden else value for name, value in typed.items()}


def _ui_test_body(stored: dict) -> dict:
    """The body the connections list's Test action posts for a stored connection (Airflow 3.3 UI,
    ``TestConnectionButton``): every text field as stored or ``""``, the password masked, and
    ``port: Number(connection.port)``, which is ``0`` for a stored NULL."""
    return {
        "connection_id": stored["connection_id"], "conn_type": stored["conn_type"], "description": "",
        "extra": stored.get("extra") or "{}", "host": stored.get("host") or "", "login": stored.get("login") or "",
        "password": "***", "port": 0 if stored.get("port") is None else int(stored["port"]),
        "schema": stored.get("schema") or "",
    }


@pytest.mark.parametrize(("host", "port"), [("", 443), ("https://api.aimlapi.com/v2", 443),
                                            ("http://127.0.0.1:8787/v2", 8787)])
def test_a_connection_added_in_the_form_can_be_tested_from_the_connections_list(host, port):
    """Airflow 3.3.0-3.3.2 refuse the Test action (HTTP 400, the UI shows "Bad Request") when the body's port
    differs from the stored one and the password is the mask: with a stored NULL port it always differs (0).
    The form must let the user store the port, and the hook must accept what is stored."""
    routes = pytest.importorskip("airflow.api_fastapi.core_api.routes.public.connections")
    same_endpoint = getattr(routes, "_same_endpoint", None)
    if same_endpoint is None:
        pytest.skip("this Airflow does not compare the tested endpoint with the stored connection")
    from airflow.api_fastapi.core_api.datamodels.connections import ConnectionBody
    from airflow.providers.common.compat.sdk import Connection

    from airflow_provider_magicvideo.hooks.settings import DEFAULT_BASE_URL, ApiSettings

    typed = {"connection_id": "magicvideo_default", "conn_type": "magicvideo", "host": host, "port": port,
             "password": "sk-form-0123456789abcdef", "extra": json.dumps({"allow_insecure_video_urls": True})}
    stored = _saved_through_the_form(typed)
    body = ConnectionBody(**_ui_test_body(stored))  # the API's own request model accepts the UI's payload
    assert same_endpoint(body.host, stored["host"]), "the API would answer 400: host differs"
    assert same_endpoint(body.port, stored["port"]), "the API would answer 400: port differs (stored NULL -> 0)"
    conn = Connection(conn_id="c", conn_type="magicvideo", host=stored["host"] or None, port=stored["port"],
                      password=stored["password"], extra=stored["extra"])
    assert ApiSettings.from_connection(conn).base_url == (host.removesuffix("/v2") + "/v2" if host else
                                                          DEFAULT_BASE_URL)


def test_conn_fields_schema_types():
    fields = INFO["connection-types"][0]["conn-fields"]
    expected = {"timeout": "number", "connect_timeout": "number", "poll_interval": "number",
                "wait_timeout": "number", "max_retries": "integer", "max_media_bytes": "integer",
                "max_video_bytes": "integer", "allow_insecure_video_urls": "boolean"}
    assert set(fields) == set(expected)
    for name, field in fields.items():
        assert field["label"]
        assert field["schema"]["type"] == [expected[name], "null"], name


def test_conn_field_defaults_match_the_hook_defaults():
    from airflow_provider_magicvideo.hooks.magicvideo import ApiSettings

    fields = INFO["connection-types"][0]["conn-fields"]
    defaults = ApiSettings(base_url="https://x", api_key="k")
    assert fields["timeout"]["schema"]["default"] == defaults.read_timeout
    assert fields["connect_timeout"]["schema"]["default"] == defaults.connect_timeout
    assert fields["max_retries"]["schema"]["default"] == defaults.max_retries
    assert fields["poll_interval"]["schema"]["default"] == defaults.poll_interval
    assert fields["wait_timeout"]["schema"]["default"] == defaults.wait_timeout
    assert fields["allow_insecure_video_urls"]["schema"]["default"] is defaults.allow_insecure_video_urls is False


@pytest.mark.parametrize("module", _python_modules())
def test_every_listed_module_imports(module):
    assert module.startswith("airflow_provider_magicvideo.")
    importlib.import_module(module)


@pytest.mark.parametrize("path", _class_paths())
def test_every_listed_class_imports(path):
    assert isinstance(_import_class(path), type)


def test_entry_point_resolves_to_get_provider_info():
    matches = [
        ep for ep in importlib.metadata.entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_magicvideo")
    ]
    assert len(matches) == 1, "install the package (pip install -e .) so its entry point is registered"
    (entry_point,) = matches
    assert entry_point.value == "airflow_provider_magicvideo:get_provider_info"
    assert entry_point.load() is get_provider_info
    assert entry_point.load()()["package-name"] == "airflow-provider-magicvideo"
