"""Request body validation with zod-style issues, one per bad field, matching the real server."""

from __future__ import annotations

from typing import Any

from airflow_provider_magicvideo.emulator.catalogue import MEDIA_FIELD, MODELS, TEMPLATES

_MODELS = list(MODELS)


def _received(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _enum_issue(field: str, value: Any, options: list[str]) -> dict[str, Any]:
    expected = " | ".join(f"'{o}'" for o in options)
    shown = value if isinstance(value, str) else _received(value)
    return {
        "path": [field],
        "code": "invalid_enum_value",
        "message": f"Invalid enum value. Expected {expected}, received '{shown}'",
        "received": value,
        "options": options,
    }


def _required(field: str) -> dict[str, Any]:
    return {
        "path": [field],
        "code": "invalid_type",
        "expected": "string",
        "received": "undefined",
        "message": "Required",
    }


def validate_body(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    """Return (issues, model). ``issues`` is empty when the body is acceptable."""
    if not isinstance(body, dict):
        return [
            {
                "path": [],
                "code": "invalid_type",
                "expected": "object",
                "received": _received(body),
                "message": f"Expected object, received {_received(body)}",
            }
        ], None
    raw_model = body.get("model")
    if raw_model is None:
        return [_required("model")], None
    if raw_model not in _MODELS:
        return [_enum_issue("model", raw_model, _MODELS)], None
    model = str(raw_model)
    issues: list[dict[str, Any]] = []
    field = MEDIA_FIELD[model]
    value = body.get(field)
    if value is None:
        issues.append(_required(field))
    elif not isinstance(value, str):
        issues.append(
            {
                "path": [field],
                "code": "invalid_type",
                "expected": "string",
                "received": _received(value),
                "message": f"Expected string, received {_received(value)}",
            }
        )
    elif not value.strip():
        issues.append(
            {
                "path": [field],
                "code": "too_small",
                "minimum": 1,
                "type": "string",
                "inclusive": True,
                "exact": False,
                "message": "String must contain at least 1 character(s)",
            }
        )
    elif "://" in value[:16] and not value.startswith(("http://", "https://")):
        issues.append(
            {"path": [field], "code": "invalid_string", "validation": "url", "message": "Invalid url"}
        )
    template = body.get("template")
    if template is not None and template not in TEMPLATES[model]:
        issues.append(_enum_issue("template", template, list(TEMPLATES[model])))
    return issues, model
