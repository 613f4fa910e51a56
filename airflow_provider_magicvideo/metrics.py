"""The provider's metrics, sent through Airflow's ``Stats`` (StatsD or OpenTelemetry, as configured).

Every metric name lives here; hooks and operators call one function per event. A metric must never fail a
task, so every call swallows (and debug-logs) backend errors. Tags carry only model, template, an error class
name or a storage scheme: never an API key, a URL or a generation id (unbounded cardinality).

=====================================  =======  ==========================================================
name                                   type     tags
=====================================  =======  ==========================================================
``magicvideo.generation.submitted``    counter  model, template
``magicvideo.generation.completed``    counter  model, template
``magicvideo.generation.failed``       counter  model, template (the generation ended in ``error``)
``magicvideo.generation.duration``     timer    model, template (submit -> completed, when the submit time
                                                is known)
``magicvideo.generation.credits``      counter  model, template (incremented by ``credits_used``)
``magicvideo.poll.failures``           counter  error (a failed status poll that was tolerated)
``magicvideo.delivery.bytes``          counter  scheme (bytes downloaded into the destination)
``magicvideo.delivery.duration``       timer    scheme, outcome (``written`` or ``unchanged``)
=====================================  =======  ==========================================================
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

GENERATION_SUBMITTED = "magicvideo.generation.submitted"
GENERATION_COMPLETED = "magicvideo.generation.completed"
GENERATION_FAILED = "magicvideo.generation.failed"
GENERATION_DURATION = "magicvideo.generation.duration"
GENERATION_CREDITS = "magicvideo.generation.credits"
POLL_FAILURES = "magicvideo.poll.failures"
DELIVERY_BYTES = "magicvideo.delivery.bytes"
DELIVERY_DURATION = "magicvideo.delivery.duration"

#: Tag values reach StatsD/DogStatsD/InfluxDB formats, where spaces, commas, colons and '=' break lines.
_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]")


def _stats() -> Any:
    # Resolved per call: common-compat finds Stats where this Airflow keeps it (3.0-3.3 moved it twice).
    from airflow.providers.common.compat.sdk import Stats

    return Stats


def _tag(value: Any) -> str:
    return _UNSAFE.sub("_", str(value))[:100] if value not in (None, "") else "unknown"


def _generation_tags(model: Any, template: Any) -> dict[str, str]:
    return {"model": _tag(model), "template": _tag(template)}


def _safely(send: Callable[[Any], None]) -> None:
    try:
        send(_stats())
    except Exception as exc:  # a metrics backend outage is no reason to fail a render
        log.debug("Could not send a metric: %s: %s", type(exc).__name__, exc)


def generation_submitted(model: Any, template: Any) -> None:
    """The API accepted a submit (a generation exists, billed if it completes)."""
    tags = _generation_tags(model, template)
    _safely(lambda stats: stats.incr(GENERATION_SUBMITTED, tags=tags))


def generation_completed(result: Mapping[str, Any], *, submitted_at: float | None, now: float) -> None:
    """A generation was seen completed: count it, its credits and (submit time known) its render time.

    :param result: the task's result dict (``model``, ``template``, ``credits_used``).
    :param submitted_at: epoch seconds of the submit, or ``None`` when unknown (e.g. a sensor given an id).
    :param now: epoch seconds when the completion was seen.
    """
    tags = _generation_tags(result.get("model"), result.get("template"))
    credits = result.get("credits_used")

    def send(stats: Any) -> None:
        stats.incr(GENERATION_COMPLETED, tags=tags)
        if isinstance(credits, int) and not isinstance(credits, bool) and credits > 0:
            stats.incr(GENERATION_CREDITS, credits, tags=tags)
        if isinstance(submitted_at, (int, float)) and now >= submitted_at:
            stats.timing(GENERATION_DURATION, timedelta(seconds=now - submitted_at), tags=tags)

    _safely(send)


def generation_failed(model: Any, template: Any) -> None:
    """A generation ended in ``error`` (not billed)."""
    tags = _generation_tags(model, template)
    _safely(lambda stats: stats.incr(GENERATION_FAILED, tags=tags))


def poll_failure(error: BaseException) -> None:
    """A status poll failed and the wait tolerated it (transient: network, 5xx, not visible yet)."""
    tags = {"error": _tag(type(error).__name__)}
    _safely(lambda stats: stats.incr(POLL_FAILURES, tags=tags))


def delivery_finished(*, scheme: str, size: int, seconds: float, written: bool) -> None:
    """A download finished: ``size`` bytes in ``seconds``; ``written`` is False when identical bytes were
    already there and the download was dropped."""
    tags = {"scheme": _tag(scheme or "file")}

    def send(stats: Any) -> None:
        stats.incr(DELIVERY_BYTES, size, tags=tags)
        stats.timing(DELIVERY_DURATION, timedelta(seconds=max(seconds, 0.0)),
                     tags={**tags, "outcome": "written" if written else "unchanged"})

    _safely(send)
