"""The account as the API reports it: the credit balance and the usage log's rows.

Both are read from untrusted answers (``GET /v1/billing/balance``, ``GET /v2/logs``): parsing never raises for
odd values; a field that is not what the docs say becomes ``None`` (or the row is dropped).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_provider_magicvideo.exceptions import UnexpectedResponseError
from airflow_provider_magicvideo.generation import count_or_none
from airflow_provider_magicvideo.redaction import truncate

#: What one magic generation costs (the API's own quote in every submit answer), charged on completion.
CREDITS_PER_GENERATION = 1_050_000
#: The price list's rate (1 USD buys 2,000,000 credits): a generation costs about $0.53. Only for showing
#: people an approximate bill; the credits are what the API charges.
CREDITS_PER_USD = 2_000_000


@dataclass(frozen=True)
class Balance:
    """``GET /v1/billing/balance``: credits left, and the account's own low-balance flag."""

    credits: int
    low: bool = False
    low_threshold: int | None = None

    @classmethod
    def from_payload(cls, payload: Any) -> Balance:
        credits = count_or_none(payload.get("balance"), "balance") if isinstance(payload, Mapping) else None
        if credits is None:
            raise UnexpectedResponseError("The balance answer has no numeric 'balance'.", status_code=200)
        return cls(credits=credits, low=payload.get("lowBalance") is True,
                   low_threshold=count_or_none(payload.get("lowBalanceThreshold"), "lowBalanceThreshold"))

    @property
    def generations(self) -> int:
        """How many generations the balance pays for."""
        return self.credits // CREDITS_PER_GENERATION

    def describe(self) -> str:
        text = f"balance {self.credits:,} credits (~{self.generations:,} generations)"
        if self.low:
            threshold = f" of {self.low_threshold:,} credits" if self.low_threshold is not None else ""
            text += f"; WARNING: the account reports a low balance (below its threshold{threshold})"
        return text


@dataclass(frozen=True)
class Submission:
    """One row of the usage log: a request this key sent, and the generation it created if it succeeded."""

    created: float
    succeeded: bool
    generation_id: str
    client_request_id: str


def submissions_of(payload: Any, client_request_id: str | Collection[str]) -> tuple[list[Submission], bool]:
    """The rows of one ``/v2/logs`` page sent with ``client_request_id`` (newest first), and ``has_more``.
    A collection of ids keeps the rows of any of them (a batch task reads the log once for all its rows).

    A page that is not the documented shape raises :class:`UnexpectedResponseError`: a lookup that cannot read
    the log must not conclude that nothing was created.
    """
    rows = payload.get("data") if isinstance(payload, Mapping) else None
    pagination = payload.get("pagination") if isinstance(payload, Mapping) else None
    if not isinstance(rows, list) or not isinstance(pagination, Mapping):
        raise UnexpectedResponseError("The usage log answer has no 'data' list and 'pagination'.", status_code=200)
    wanted = {client_request_id} if isinstance(client_request_id, str) else set(client_request_id)
    found = []
    for row in rows:
        if not isinstance(row, Mapping) or row.get("client_request_id") not in wanted:
            continue
        generation_id = row.get("inference_id")
        created = _epoch(row.get("created"))
        if not isinstance(generation_id, str) or not generation_id.strip() or created is None:
            raise UnexpectedResponseError(f"A usage log row of this task is unreadable: {truncate(str(row), 200)}",
                                          status_code=200)
        found.append(Submission(created, row.get("status") == "succeeded", generation_id.strip(),
                                str(row["client_request_id"])))
    found.sort(key=lambda s: s.created, reverse=True)
    return found, pagination.get("has_more") is True


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def iso_utc(epoch: float) -> str:
    """An instant as the log's ``start``/``end`` query text (UTC, seconds)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
