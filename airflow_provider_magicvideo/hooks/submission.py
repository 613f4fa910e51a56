"""What a submit sends: the validated request body and the ``X-Client-Request-Id``.

Building the body is where every input is checked (model, template, media, prompt), so a bad input raises
:class:`InvalidInputError` before any HTTP call and costs no credit.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from airflow_provider_magicvideo.exceptions import InvalidInputError
from airflow_provider_magicvideo.media import prepare_media
from airflow_provider_magicvideo.redaction import truncate
from airflow_provider_magicvideo.templates import Model, resolve_model, resolve_template

_CLIENT_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")
_WANTS = {Model.IMAGE_TO_VIDEO: "image", Model.VIDEO_TO_VIDEO: "video", Model.TEXT_TO_VIDEO: "prompt"}


def make_client_request_id(*parts: object) -> str:
    """An ``X-Client-Request-Id`` (1-128 chars of ``[A-Za-z0-9._:-]``) from ``parts``; random without parts.

    Over-long ids keep their head and end with a short hash of the whole, so they stay unique.
    """
    raw = ":".join(str(p) for p in parts if p is not None and str(p) != "")
    text = _CLIENT_ID_UNSAFE.sub("-", raw).strip("-") or f"airflow:{uuid.uuid4().hex}"
    if len(text) > 128:
        text = f"{text[:111]}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    return text


def build_submit_body(*, model: str | Model = Model.IMAGE_TO_VIDEO, image: Any = None, video: Any = None,
                      prompt: str | None = None, template: str | None = None,
                      max_media_bytes: int | None = None) -> dict[str, str]:
    """Validate inputs and build the POST body. Raises :class:`InvalidInputError` before any HTTP call."""
    resolved = resolve_model(model)
    wanted = _WANTS[resolved]
    given = {"image": image, "video": video, "prompt": prompt}
    extra = [name for name, value in given.items() if value is not None and name != wanted]
    if extra:
        raise InvalidInputError(f"{', '.join(extra)}: not used by {resolved.value}, which takes {wanted!r}. "
                                "Remove it or change model.")
    body = {"model": resolved.value}
    if resolved is Model.TEXT_TO_VIDEO:
        body["prompt"] = _prompt(prompt, resolved)
    else:
        body[resolved.media_field] = prepare_media(given[wanted], kind=wanted, max_bytes=max_media_bytes)  # type: ignore[arg-type]
    body["template"] = resolve_template(template, resolved)
    return body


def _prompt(prompt: Any, model: Model) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInputError(f"prompt: {model.value} needs a non-empty text prompt, got {truncate(prompt, 60)}.")
    text = prompt.strip()
    if text.lower() in ("none", "null"):
        raise InvalidInputError(f"prompt: the prompt rendered to {text!r}; the upstream XCom or param that the "
                                "template reads is probably missing. Nothing was submitted.")
    return text
