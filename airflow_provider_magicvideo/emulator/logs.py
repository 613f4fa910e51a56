"""``GET /v2/logs`` query rules and row shape, from the docs' ``logs-v2.json``, ``usage-logs.md`` and
``api-key-usage.md`` (the window rules): ``period`` (``<n>h``/``<n>d``) or ``start`` + ``end`` (ISO-8601, UTC
when no offset), never both, window at most 92 days; ``model``/``status`` repeated, never comma-split;
``limit`` 1-100 (default 50), ``offset`` >= 0; rows newest first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_provider_magicvideo.emulator.catalogue import CREDITS_PER_USD
from airflow_provider_magicvideo.emulator.errors import timestamp
from airflow_provider_magicvideo.emulator.state import LogRow

PERIOD = re.compile(r"^([1-9][0-9]*)([hd])$")
MAX_WINDOW = 92 * 86400
MAX_MODELS = 50
STATUSES = ("succeeded", "failed")


class QueryError(ValueError):
    """A 400 answer: ``issues`` are zod-style like the body validation's."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        super().__init__("Query validation error!")
        self.issues = issues


@dataclass(frozen=True)
class LogQuery:
    start: float
    end: float
    models: tuple[str, ...]
    statuses: tuple[str, ...]
    limit: int
    offset: int
    key_prefix: str | None


def _issue(field: str, message: str, code: str = "custom") -> dict[str, Any]:
    return {"path": [field], "code": code, "message": message}


def _instant(field: str, value: str) -> float:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise QueryError([_issue(field, f"Invalid ISO-8601 date: {value!r}", "invalid_date")]) from None
    if parsed.tzinfo is None:  # documented: a value without an offset is UTC, not local time
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _int(field: str, values: list[str], default: int, low: int, high: int | None) -> int:
    if not values:
        return default
    try:
        number = int(values[-1])
    except ValueError:
        raise QueryError([_issue(field, "Expected integer", "invalid_type")]) from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise QueryError([_issue(field, f"Number must be {bound}", "too_big" if number > low else "too_small")])
    return number


def parse(params: list[tuple[str, str]], now: float) -> LogQuery:
    """Raise :class:`QueryError` for every documented 400 case."""
    multi: dict[str, list[str]] = {}
    for name, value in params:
        multi.setdefault(name, []).append(value)
    period, start, end = (multi.get(name, [None])[-1] for name in ("period", "start", "end"))
    if period is not None and (start is not None or end is not None):
        raise QueryError([_issue("period", "Provide either period or start and end, not both")])
    if period is not None:
        match = PERIOD.match(period)
        if match is None:
            raise QueryError([_issue("period", "Expected a positive integer followed by h or d, e.g. 24h or 7d")])
        seconds = int(match.group(1)) * (3600 if match.group(2) == "h" else 86400)
        window = (now - seconds, now)
    elif start is not None and end is not None:
        window = (_instant("start", start), _instant("end", end))
        if window[1] < window[0]:
            raise QueryError([_issue("end", "end must not be earlier than start")])
    else:
        missing = "end" if start is not None else "start" if end is not None else "period"
        raise QueryError([_issue(missing, "Provide either period or both start and end", "invalid_type")])
    if window[1] - window[0] > MAX_WINDOW:
        raise QueryError([_issue("period" if period else "end", "The window must not exceed 92 days")])
    statuses = tuple(multi.get("status", []))
    bad = [s for s in statuses if s not in STATUSES]
    if bad:  # "succeeded,failed" is one invalid value, as documented
        expected = " | ".join(f"'{s}'" for s in STATUSES)
        raise QueryError([
            {"path": ["status"], "code": "invalid_enum_value", "received": bad[0], "options": list(STATUSES),
             "message": f"Invalid enum value. Expected {expected}, received '{bad[0]}'"}
        ])
    models = tuple(multi.get("model", []))
    if len(models) > MAX_MODELS:
        raise QueryError([_issue("model", f"At most {MAX_MODELS} models", "too_big")])
    return LogQuery(
        start=window[0],
        end=window[1],
        models=models,
        statuses=statuses,
        limit=_int("limit", multi.get("limit", []), 50, 1, 100),
        offset=_int("offset", multi.get("offset", []), 0, 0, None),
        key_prefix=multi.get("key_prefix", [None])[-1],
    )


def model_matches(wanted: tuple[str, ...], model: str) -> bool:
    """``source/alias`` or the bare alias, matched exactly (so ``a,b`` matches nothing)."""
    return not wanted or any(w == model or w == model.partition("/")[2] for w in wanted)


def row_json(row: LogRow, status: str, credits: int) -> dict[str, Any]:
    return {
        "created": timestamp(row.created),
        "status": status,
        "origin": "api",
        "model": row.model,
        "cost": {"usd": round(credits / CREDITS_PER_USD, 9), "credits": credits},
        "tokens": {"input": 0, "output": 0, "total": 0},  # the magic models are not billed per token
        "request_id": row.request_id,
        "inference_id": row.inference_id,
        "client_request_id": row.client_request_id,
    }


def page(rows: list[dict[str, Any]], query: LogQuery) -> dict[str, Any]:
    """``rows`` already filtered and newest first."""
    chunk = rows[query.offset : query.offset + query.limit]
    return {
        "data": chunk,
        "pagination": {
            "limit": query.limit,
            "offset": query.offset,
            "total": len(rows),
            "has_more": query.offset + len(chunk) < len(rows),
        },
    }
