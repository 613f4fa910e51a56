"""Apache Airflow provider for AI/ML API "magic" template-video renders.

Importing this package does not import Airflow, so the emulator and the template catalogue stay light.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_magicvideo.version_check import check_airflow_version

check_airflow_version()  # a clear ImportError on an unsupported Airflow, before any airflow import

__version__ = "0.1.0"

_PACKAGE = "airflow_provider_magicvideo"


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""
    integration = "AI/ML API Magic Video"
    return {
        "package-name": "airflow-provider-magicvideo",
        "name": integration,
        "description": "Render AI/ML API `magic` template videos (image/video/text-to-video) from Airflow: "
        "submit, deferrable wait, delivery to any bucket.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://docs.aimlapi.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": integration, "python-modules": [f"{_PACKAGE}.hooks.magicvideo"]}],
        "operators": [
            {
                "integration-name": integration,
                "python-modules": [f"{_PACKAGE}.operators.magicvideo", f"{_PACKAGE}.operators.deliver",
                                   f"{_PACKAGE}.operators.render", f"{_PACKAGE}.operators.batch"],
            }
        ],
        "sensors": [{"integration-name": integration, "python-modules": [f"{_PACKAGE}.sensors.magicvideo"]}],
        "triggers": [{"integration-name": integration,
                      "python-modules": [f"{_PACKAGE}.triggers.magicvideo", f"{_PACKAGE}.triggers.batch"]}],
        "extra-links": [
            f"{_PACKAGE}.links.MagicVideoLink",
            f"{_PACKAGE}.links.MagicVideoDeliveredLink",
        ],
        "connection-types": [
            {
                "hook-class-name": f"{_PACKAGE}.hooks.magicvideo.MagicVideoHook",
                "hook-name": "AI/ML API Magic Video",
                "connection-type": "magicvideo",
                "ui-field-behaviour": {
                    # The port stays visible: the connections list's Test action of Airflow 3.3.0-3.3.2 posts
                    # `port: 0` for a connection stored without one, and the API refuses that as "testing a
                    # different destination" (HTTP 400, "Bad Request" in the UI). A stored port tests fine.
                    "hidden-fields": ["login", "schema"],
                    "relabeling": {"password": "API key", "host": "API base URL", "port": "API port"},
                    "placeholders": {
                        "host": "https://api.aimlapi.com/v2 (leave empty for the public API)",
                        "port": "443 (the port of the API base URL; the Test action needs it)",
                        "password": "your AI/ML API key",
                        "extra": '{"timeout": 30, "max_retries": 3, "poll_interval": 15, "wait_timeout": 1000}',
                    },
                },
                "conn-fields": {
                    "timeout": {
                        "label": "Request timeout (s)",
                        "description": "Read timeout of one HTTP request to the API.",
                        "schema": {"type": ["number", "null"], "default": 30},
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (s)",
                        "schema": {"type": ["number", "null"], "default": 10},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries of a status request on 429/5xx/network errors. A submit is "
                        "retried only when no render can have been created.",
                        "schema": {"type": ["integer", "null"], "default": 3},
                    },
                    "poll_interval": {
                        "label": "Default poll interval (s)",
                        "description": "At least 1 second.",
                        "schema": {"type": ["number", "null"], "default": 15, "minimum": 1},
                    },
                    "wait_timeout": {
                        "label": "Default wait timeout (s)",
                        "schema": {"type": ["number", "null"], "default": 1000},
                    },
                    "max_media_bytes": {
                        "label": "Max inline media size (bytes)",
                        "description": "Limit for images/videos sent inline as base64 (default 10 MiB image, "
                        "50 MiB video).",
                        "schema": {"type": ["integer", "null"]},
                    },
                    "max_video_bytes": {
                        "label": "Max downloaded video size (bytes)",
                        "description": "A download larger than this fails (default 500 MiB).",
                        "schema": {"type": ["integer", "null"]},
                    },
                    "allow_insecure_video_urls": {
                        "label": "Allow http:// and loopback video URLs",
                        "description": "Only for the offline emulator. Off: video URLs must be https on a public "
                        "address.",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                },
            }
        ],
    }
