"""Small client helpers for tests and demos that talk to a running emulator over HTTP."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import requests
from PIL import Image

AUTH = {"Authorization": "Bearer test-key-123"}
FINAL = ("completed", "error")


def png_bytes(color: tuple[int, int, int] = (255, 0, 255), size: tuple[int, int] = (320, 240)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def submit(
    base_url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, **kwargs: Any
) -> requests.Response:
    payload = (
        body if body is not None else {"model": "magic/image-to-video", "image_url": data_uri(png_bytes())}
    )
    return requests.post(
        f"{base_url}/video/generations", json=payload, headers=headers or AUTH, timeout=10, **kwargs
    )


def status(base_url: str, generation_id: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(
        f"{base_url}/video/generations",
        params={"generation_id": generation_id},
        headers=headers or AUTH,
        timeout=10,
    )


def wait_final(base_url: str, generation_id: str, timeout: float = 30.0) -> tuple[dict[str, Any], list[str]]:
    """Poll until completed/error; return the final body and every status seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = status(base_url, generation_id).json()
        seen.append(body["status"])
        if body["status"] in FINAL:
            return body, seen
        time.sleep(0.1)
    raise AssertionError(f"{generation_id} not final after {timeout}s; saw {seen[-5:]}")


def wait_status(base_url: str, generation_id: str, wanted: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll until the generation reports ``wanted`` (e.g. after releasing it with ``complete_pending``).

    The timeout only bounds waiting for the render work itself; with a paused clock the status cannot move on
    its own, so no test races the render clock."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = status(base_url, generation_id).json()
        if body["status"] == wanted:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{generation_id} never reported {wanted!r}; last answer {body}")


def logs(base_url: str, params: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
    """``GET /v2/logs``; ``params`` may be a list of pairs to repeat a parameter."""
    root = base_url.removesuffix("/v2")
    chosen = AUTH if headers is None else headers
    return requests.get(f"{root}/v2/logs", params=params or {"period": "1h"}, headers=chosen, timeout=10)


def balance(base_url: str, headers: dict[str, str] | None = None) -> requests.Response:
    root = base_url.removesuffix("/v2")
    return requests.get(f"{root}/v1/billing/balance", headers=AUTH if headers is None else headers, timeout=10)
