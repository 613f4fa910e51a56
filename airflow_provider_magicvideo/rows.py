"""The rows of a batch render, checked all at once before anything is sent.

A row is a dict: ``key`` (unique; names the video and the row's ``X-Client-Request-Id``), exactly one input
(``image``, ``video`` or ``prompt``, as the model wants), and optionally ``template``, ``model`` and
``destination`` (the full file URI of its MP4; default ``<folder>/<key>.mp4``). Every check of a single submit
runs here (:func:`build_submit_body`: model, template, media, prompt), so a typo in row 312 costs nothing and
is reported together with every other bad row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_magicvideo.delivery import as_destination, str_uri
from airflow_provider_magicvideo.exceptions import InvalidInputError, MagicVideoError
from airflow_provider_magicvideo.hooks.submission import build_submit_body, make_client_request_id
from airflow_provider_magicvideo.redaction import truncate

ROW_FIELDS = frozenset({"key", "image", "video", "prompt", "template", "model", "destination"})
INPUTS = ("image", "video", "prompt")
#: Keys become file names and request ids: nothing that could climb out of the folder or need quoting.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class BatchRow:
    """One valid row. ``inputs`` are the row's own values, not the prepared request body: 500 inline images
    kept as base64 would not fit a worker's memory, so the body is built again at submit time."""

    key: str
    model: str
    template: str
    destination: str
    inputs: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class InvalidRow:
    index: int  # 1-based position in ``rows``
    key: str | None
    message: str

    def describe(self) -> str:
        return f"row {self.index} (key {self.key!r}): {self.message}"


def row_request_id(task_request_id: str, key: str) -> str:
    """The row's ``X-Client-Request-Id``: the task instance's (stable across tries) plus the row key, so the
    usage log ties each generation to its row and a retry can find it."""
    return make_client_request_id(task_request_id, "row", key)


def plan_rows(rows: Any, *, model: str, template: str | None, folder: str | None, dest_conn_id: str | None,
              max_media_bytes: int | None) -> tuple[list[BatchRow], list[InvalidRow]]:
    """Every row checked; the valid ones as :class:`BatchRow`, the others with what to fix."""
    if isinstance(rows, Mapping) or not isinstance(rows, Sequence) or isinstance(rows, str | bytes):
        raise InvalidInputError(f"rows: expected a list of dicts, got {type(rows).__name__}.")
    valid: list[BatchRow] = []
    invalid: list[InvalidRow] = []
    seen_keys: set[str] = set()
    seen_destinations: dict[str, str] = {}
    for index, row in enumerate(rows, start=1):
        key = row.get("key") if isinstance(row, Mapping) else None
        shown_key = key if isinstance(key, str) else None
        try:
            planned = _plan_row(row, model=model, template=template, folder=folder, dest_conn_id=dest_conn_id,
                                max_media_bytes=max_media_bytes)
            if planned.key in seen_keys:
                raise InvalidInputError(f"key: {planned.key!r} is used by an earlier row; every row needs its own "
                                        "key (it names the video and the row's request id).")
            if planned.destination in seen_destinations:
                raise InvalidInputError(f"destination: {planned.destination} is also row "
                                        f"{seen_destinations[planned.destination]!r}'s; give each row its own file.")
        except MagicVideoError as exc:
            invalid.append(InvalidRow(index, shown_key, str(exc)))
            continue
        seen_keys.add(planned.key)
        seen_destinations[planned.destination] = planned.key
        valid.append(planned)
    return valid, invalid


def _plan_row(row: Any, *, model: str, template: str | None, folder: str | None, dest_conn_id: str | None,
              max_media_bytes: int | None) -> BatchRow:
    if not isinstance(row, Mapping):
        raise InvalidInputError(f"expected a dict with 'key' and an input, got {truncate(row, 60)}.")
    unknown = sorted(str(name) for name in row if name not in ROW_FIELDS)
    if unknown:  # a misspelt "tempalte" would otherwise render the default template and be billed
        raise InvalidInputError(f"{', '.join(unknown)}: not a row field; use {', '.join(sorted(ROW_FIELDS))}.")
    key = row.get("key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInputError(f"key: {truncate(key, 60)} is not a usable row key; use 1-100 letters, digits, "
                                "'.', '_' or '-', starting with a letter or digit.")
    inputs = {name: row[name] for name in INPUTS if row.get(name) is not None}
    body = build_submit_body(model=row.get("model") or model, template=row.get("template") or template,
                             max_media_bytes=max_media_bytes, **inputs)
    target = row.get("destination")
    if target is None:
        if not folder:
            raise InvalidInputError("destination: the row has none and the operator has no destination folder; "
                                    "give the row a full file URI or the operator destination=<folder>.")
        target = f"{str(folder).rstrip('/')}/{key}.mp4"
    destination = str_uri(as_destination(target, dest_conn_id))
    return BatchRow(key=key, model=body["model"], template=body["template"], destination=destination,
                    inputs=inputs)


__all__ = ["ROW_FIELDS", "BatchRow", "InvalidRow", "plan_rows", "row_request_id"]
