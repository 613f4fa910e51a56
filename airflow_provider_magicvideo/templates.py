"""The template catalogue: exact server enums per model, plus tolerant lookup of what users paste.

This module is pure data and functions so the hook, the operators and the emulator share one truth.
The server wants the exact ASCII names below; forgiving spellings (case, spacing, the Cyrillic "С"
the API docs use in "Rotating Сards") is the client's job, done by :func:`resolve_template`.
"""

# ruff: noqa: RUF001, RUF002  (the Cyrillic look-alikes below are the point)
from __future__ import annotations

import difflib
import unicodedata
from enum import Enum

from airflow_provider_magicvideo.exceptions import UnknownModelError, UnknownTemplateError
from airflow_provider_magicvideo.redaction import truncate


class Model(str, Enum):
    """The three "magic" models of the AI/ML API video endpoint."""

    IMAGE_TO_VIDEO = "magic/image-to-video"
    VIDEO_TO_VIDEO = "magic/video-to-video"
    TEXT_TO_VIDEO = "magic/text-to-video"

    @property
    def media_field(self) -> str:
        """The request body field that carries this model's input."""
        return _MEDIA_FIELD[self]


_MEDIA_FIELD = {
    Model.IMAGE_TO_VIDEO: "image_url",
    Model.VIDEO_TO_VIDEO: "video_url",
    Model.TEXT_TO_VIDEO: "prompt",
}

IMAGE_TO_VIDEO_TEMPLATES: tuple[str, ...] = (
    "Thailand Street",
    "Times Square Billboard",
    "New York Times Square (77)",
    "Phone Social",
    "Art Gallery",
    "New York Times Square (66)",
    "Dubai Museum",
    "Digital Float",
    "Rotating Cards",
    "Desktop Reveal",
    "Egypt Pyramid",
    "Frames Drop",
    "Cappadocia Balloons",
    "Times Square Round Screen",
    "Stockholm Metro",
    "Tokyo Billboard",
    "San Francisco Skyscrapers",
    "Malaysia Shop",
    "Las Vegas LED",
    "Phone App",
    "Paris Eiffel Tower",
)

# video-to-video: the same list without Digital Float and Frames Drop, and (67)/(78) instead of (66)/(77).
_V2V_RENAMES = {"New York Times Square (66)": "New York Times Square (67)",
                "New York Times Square (77)": "New York Times Square (78)"}
VIDEO_TO_VIDEO_TEMPLATES: tuple[str, ...] = tuple(
    _V2V_RENAMES.get(name, name)
    for name in IMAGE_TO_VIDEO_TEMPLATES
    if name not in ("Digital Float", "Frames Drop")
)

TEXT_TO_VIDEO_TEMPLATES: tuple[str, ...] = ("Shanghai Drone Show",)

TEMPLATES: dict[Model, tuple[str, ...]] = {
    Model.IMAGE_TO_VIDEO: IMAGE_TO_VIDEO_TEMPLATES,
    Model.VIDEO_TO_VIDEO: VIDEO_TO_VIDEO_TEMPLATES,
    Model.TEXT_TO_VIDEO: TEXT_TO_VIDEO_TEMPLATES,
}

DEFAULT_TEMPLATE: dict[Model, str] = {
    Model.IMAGE_TO_VIDEO: "Thailand Street",
    Model.VIDEO_TO_VIDEO: "Thailand Street",
    Model.TEXT_TO_VIDEO: "Shanghai Drone Show",
}

# Cyrillic letters that look like Latin ones; documentation copy-paste brings them in.
_CONFUSABLES = str.maketrans({
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "К": "K", "М": "M", "О": "O", "Р": "P",
    "Т": "T", "Х": "X", "а": "a", "с": "c", "е": "e", "і": "i", "о": "o", "р": "p", "х": "x", "у": "y",
    "ѕ": "s", "ј": "j",
})


def _fold(name: str) -> str:
    """Comparison key: look-alikes mapped to ASCII, all whitespace removed, case folded."""
    text = unicodedata.normalize("NFKC", name).translate(_CONFUSABLES)
    return "".join(text.split()).casefold()


_INDEX: dict[Model, dict[str, str]] = {
    model: {_fold(name): name for name in names} for model, names in TEMPLATES.items()
}


def resolve_model(model: str | Model) -> Model:
    """Return the :class:`Model` for ``model``; accept the enum, the exact id, or a case/space variant."""
    if isinstance(model, Model):
        return model
    wanted = "".join(str(model).split()).casefold()
    for candidate in Model:
        if candidate.value == wanted or candidate.name.casefold() == wanted.replace("-", "_"):
            return candidate
    raise UnknownModelError(
        f"model: unknown model {truncate(model, 100)}. Use one of: {', '.join(m.value for m in Model)}."
    )


def resolve_template(template: str | None, model: str | Model = Model.IMAGE_TO_VIDEO) -> str:
    """Return the exact server enum for ``template`` under ``model``.

    ``None`` or an empty string gives the model's default. Unknown names raise
    :class:`UnknownTemplateError` listing the valid names and the closest match, before any HTTP call.
    """
    resolved_model = resolve_model(model)
    if template is None or not str(template).strip():
        return DEFAULT_TEMPLATE[resolved_model]
    index = _INDEX[resolved_model]
    key = _fold(str(template))
    if key in index:
        return index[key]
    close = difflib.get_close_matches(key, list(index), n=1, cutoff=0.6) if len(key) <= 100 else []
    hint = f" Did you mean {index[close[0]]!r}?" if close else ""
    # A name valid for another model is a common mix-up (e.g. "(66)" vs "(67)"): say so.
    elsewhere = [m.value for m, idx in _INDEX.items() if m is not resolved_model and key in idx]
    where = f" It is a template of {', '.join(elsewhere)}." if elsewhere else ""
    raise UnknownTemplateError(
        f"template: {truncate(template, 100)} is not a template of {resolved_model.value}.{where}{hint} "
        f"Valid templates: {', '.join(TEMPLATES[resolved_model])}."
    )
