"""Seeded, composable fault injection.

A profile is a named preset of knobs; knobs can be set on top of (or without) profiles, so
``{"profile": "rate_limit", "error_rate": 0.1}`` combines 429 bursts with random 5xx answers.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    "none": {},
    # 429 bursts without Retry-After, as documented; the second profile adds the (undocumented) header.
    "rate_limit": {"rate_limit_burst": 3, "rate_limit_interval": 5},
    "rate_limit_retry_after": {"rate_limit_burst": 3, "rate_limit_interval": 5, "retry_after": 1},
    "server_errors": {"error_rate": 0.1},
    "slow": {"delay_seconds": 1.0},
    "drop_after_post": {"drop_after_post_rate": 1.0},
    "malformed_json": {"malformed_json_rate": 0.5},
    "unknown_status": {"unknown_status_rate": 0.5},
    "render_error": {"render_error_rate": 0.5},
    "short_expiry": {"url_expiry": 5},
    "no_credits": {"no_credits": True},
    "waiting": {"waiting_rate": 0.5},  # the docs' samples poll on "waiting" but never show it
    "active_status": {"active_rate": 1.0},  # "active" for every model, not only text-to-video
    "late_logs": {"log_delay_min": 30.0, "log_delay_max": 60.0},  # /v2/logs rows appear 30-60 s late
    "logs_unavailable": {"logs_error_rate": 1.0},  # GET /v2/logs answers 503
}


@dataclass(frozen=True)
class FaultKnobs:
    """Every knob; the defaults are the ``none`` profile."""

    profile: tuple[str, ...] = ()
    rate_limit_burst: int = 0  # 429s in a row at the start of each cycle
    rate_limit_interval: int = 0  # requests let through between bursts; 0 means a single burst
    retry_after: int | None = None  # Retry-After (seconds) on injected 429s; None: no header (as documented)
    error_rate: float = 0.0  # fraction of /v2 requests answered with a random code of error_codes
    error_codes: tuple[int, ...] = (500, 502, 503, 504)
    delay_seconds: float = 0.0  # added before every /v2 answer
    drop_after_post_rate: float = 0.0  # fraction of accepted POSTs whose connection is reset
    malformed_json_rate: float = 0.0  # fraction of status answers with a truncated JSON body
    unknown_status_rate: float = 0.0  # fraction of non-final polls that answer status "processing"
    render_error_rate: float = 0.0  # fraction of new jobs that end in status "error" (RenderError)
    url_expiry: int = 600  # X-Amz-Expires of file URLs
    no_credits: bool = False  # every POST gets 403 out of credits
    waiting_rate: float = 0.0  # fraction of new jobs that report "waiting" after "queued"
    active_rate: float = 0.0  # fraction of new jobs (any model) that report "active" for part of the render
    log_delay_min: float | None = None  # ingestion delay of /v2/logs rows drawn from [min, max] seconds;
    log_delay_max: float | None = None  # None: the configured log_delay
    logs_error_rate: float = 0.0  # fraction of GET /v2/logs answered 503 (the other faults hit /v2/video only)

    @classmethod
    def build(cls, spec: str | Mapping[str, Any] | None) -> FaultKnobs:
        """Build from a profile name (``"a,b"`` composes), or a mapping of knobs with optional ``profile``."""
        if spec is None:
            return cls()
        if isinstance(spec, str):
            spec = {"profile": spec}
        spec = dict(spec)
        names = spec.pop("profile", None) or spec.pop("profiles", None) or ()
        if isinstance(names, str):
            names = [n.strip() for n in names.replace("+", ",").split(",") if n.strip()]
        merged: dict[str, Any] = {}
        for name in names:
            if name not in PROFILES:
                raise ValueError(f"unknown fault profile {name!r}; known: {', '.join(PROFILES)}")
            merged.update(PROFILES[name])
        known = {f.name for f in fields(cls)} - {"profile"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(sorted(unknown))}")
        merged.update(spec)
        if "error_codes" in merged:
            merged["error_codes"] = tuple(int(c) for c in merged["error_codes"])
        knobs = replace(cls(), profile=tuple(n for n in names if n != "none"), **merged)
        return knobs

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = list(self.profile)
        data["error_codes"] = list(self.error_codes)
        return data


@dataclass
class FaultInjector:
    """Decisions drawn from a seeded RNG; counters restart whenever the knobs change."""

    knobs: FaultKnobs = field(default_factory=FaultKnobs)
    seed: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.configure(self.knobs)

    def configure(self, knobs: FaultKnobs) -> None:
        with self._lock:
            self.knobs = knobs
            self._rng = random.Random(self.seed)
            self._requests = 0

    def _chance(self, rate: float) -> bool:
        return rate > 0 and (rate >= 1 or self._rng.random() < rate)

    def rate_limited(self) -> bool:
        """Count one API request; True when it falls inside a 429 burst."""
        with self._lock:
            index = self._requests
            self._requests += 1
            burst, interval = self.knobs.rate_limit_burst, self.knobs.rate_limit_interval
            if burst <= 0:
                return False
            if interval <= 0:
                return index < burst
            return index % (burst + interval) < burst

    def server_error(self) -> int | None:
        with self._lock:
            if self._chance(self.knobs.error_rate):
                return self._rng.choice(self.knobs.error_codes)
            return None

    def drop_after_post(self) -> bool:
        with self._lock:
            return self._chance(self.knobs.drop_after_post_rate)

    def malformed_json(self) -> bool:
        with self._lock:
            return self._chance(self.knobs.malformed_json_rate)

    def unknown_status(self) -> bool:
        with self._lock:
            return self._chance(self.knobs.unknown_status_rate)

    def render_error(self) -> bool:
        with self._lock:
            return self._chance(self.knobs.render_error_rate)

    def logs_error(self) -> bool:
        with self._lock:
            return self._chance(self.knobs.logs_error_rate)

    def waits(self) -> bool:
        with self._lock:
            return self._chance(self.knobs.waiting_rate)

    def active(self) -> bool:
        with self._lock:
            return self._chance(self.knobs.active_rate)

    def log_delay(self, default: float) -> float:
        """Seconds until a new request's log row is visible."""
        low, high = self.knobs.log_delay_min, self.knobs.log_delay_max
        if low is None and high is None:
            return default
        low = high if low is None else low
        high = low if high is None else high
        with self._lock:
            return self._rng.uniform(float(low or 0.0), float(high or 0.0))
