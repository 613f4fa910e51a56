"""What both hooks share: the connection type's identity and the headers and parameters of every request."""

from __future__ import annotations

from airflow_provider_magicvideo.hooks.settings import ApiSettings
from airflow_provider_magicvideo.hooks.submission import make_client_request_id


def auth_headers(settings: ApiSettings, client_request_id: str) -> dict[str, str]:
    # Built per request and never stored on a hook, so neither repr() nor vars() of a hook shows the key.
    return {"Authorization": f"Bearer {settings.api_key}", "X-Client-Request-Id": client_request_id}


def status_params(generation_id: str) -> dict[str, str]:
    return {"generation_id": generation_id}


class HookIdentity:
    conn_name_attr = "conn_id"
    default_conn_name = "magicvideo_default"
    conn_type = "magicvideo"

    def _init_identity(self, conn_id: str, client_request_id: str | None) -> None:
        self.conn_id = conn_id
        # Operators pass one derived from the task instance (the same across tries); otherwise a random one.
        self.client_request_id = make_client_request_id(*([client_request_id] if client_request_id else []))


__all__ = ["HookIdentity", "auth_headers", "status_params"]
