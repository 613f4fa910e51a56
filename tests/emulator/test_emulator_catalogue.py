"""Three-way fidelity: the emulator's own enums == the client's catalogue == the OpenAPI specs' enums.

The spec enums are vendored in ``data/openapi_enums.json`` (source repository and commit inside it), so this
never reaches the network. A fourth leg checks the running emulator answers with exactly these lists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_magicvideo import templates as client
from airflow_provider_magicvideo.emulator import catalogue
from airflow_provider_magicvideo.emulator.testing import submit

SPEC = json.loads((Path(__file__).parent / "data" / "openapi_enums.json").read_text())["models"]
POLL_STATUSES = json.loads((Path(__file__).parent / "data" / "openapi_enums.json").read_text())["poll"]["status_enum"]


def test_models_agree_three_ways():
    assert list(catalogue.MODELS) == list(SPEC) == [m.value for m in client.Model]


@pytest.mark.parametrize("model", list(SPEC))
def test_templates_and_defaults_agree_three_ways(model):
    spec = SPEC[model]
    assert list(catalogue.TEMPLATES[model]) == spec["template_enum"] == list(client.TEMPLATES[client.Model(model)])
    assert catalogue.DEFAULT_TEMPLATE[model] == spec["template_default"] == client.DEFAULT_TEMPLATE[client.Model(model)]
    media = [field for field in spec["required"] if field != "model"]
    assert [catalogue.MEDIA_FIELD[model]] == media == [client.Model(model).media_field]


def test_statuses_are_the_spec_enum():
    for spec in SPEC.values():
        assert list(catalogue.STATUSES) == spec["status_enum"]
    assert list(catalogue.STATUSES) == POLL_STATUSES
    assert not set(catalogue.EXTRA_STATUSES) & set(POLL_STATUSES)


def test_the_emulator_does_not_use_the_client_catalogue():
    package = Path(catalogue.__file__).parent
    for module in package.glob("*.py"):
        assert "airflow_provider_magicvideo.templates" not in module.read_text(), module.name


@pytest.mark.integration
@pytest.mark.parametrize("model", list(SPEC))
def test_the_running_emulator_offers_exactly_the_spec_enums(fast, model):
    field = SPEC[model]["required"][1]
    issue = submit(fast.base_url, {"model": model, field: "eA==", "template": "nope"}).json()["meta"][0]
    assert issue["path"] == ["template"] and issue["options"] == SPEC[model]["template_enum"]
    model_issue = submit(fast.base_url, {"model": "magic/nope", field: "eA=="}).json()["meta"][0]
    assert model_issue["options"] == list(SPEC)
    for template in SPEC[model]["template_enum"]:
        response = submit(fast.base_url, {"model": model, field: "eA==", "template": template})
        assert response.status_code == 200, (template, response.text)
