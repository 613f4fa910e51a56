"""Result records of the benchmarks, and the generated block of their ``bench/results/*.md`` files.

A results file is prose written by hand (method, findings, why a target is missed) around ONE block that the
benchmark writes: ``write_generated`` replaces only what stands between ``BEGIN`` and ``END`` and keeps the
rest, so the analysis lives in the ``.md`` file alone and a re-run does not erase it.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self

BEGIN = "<!-- generated: begin (the benchmark rewrites this block; edit the prose around it) -->"
END = "<!-- generated: end -->"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def fmt(value: float | None, digits: int) -> str:
    """A table cell: ``-`` for a missing or NaN value, else thousands separators and ``digits`` decimals."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


@dataclass
class WaitRecord:
    """One contender waiting on N renders: what every trigger benchmark records (subclasses add their own)."""

    contender: str
    n: int
    poll: float
    ok: int = 0  # success events
    events: int = 0  # all events seen (latency samples)
    polls: int = 0  # status GETs the emulator served while measuring
    cpu_s: float = 0.0
    rss_base_mb: float = 0.0
    peak_fds: int = 0
    p50_s: float = math.nan
    p99_s: float = math.nan
    max_s: float = math.nan
    emu_cpu_s: float = 0.0
    load_avg: float = 0.0  # 1-minute load average of the machine when the run ended (other work competes)
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    DERIVED: ClassVar[tuple[str, ...]] = ("cpu_per_poll_ms",)  # properties saved next to the fields

    @property
    def label(self) -> str:
        return self.contender

    @property
    def measured_s(self) -> float:
        """The seconds over which ``polls`` and ``cpu_s`` were counted."""
        return self.wall_s

    @property
    def cpu_per_poll_ms(self) -> float:
        return 1000 * self.cpu_s / self.polls if self.polls else math.nan

    @property
    def req_per_s(self) -> float:
        return self.polls / self.measured_s if self.measured_s else math.nan

    def per_render_kb(self, rss_mb: float) -> float:
        """RSS above the baseline per waiting render, in KB."""
        return 1024 * (rss_mb - self.rss_base_mb) / self.n if self.n else math.nan

    def set_latencies(self, latencies: list[float]) -> None:
        self.p50_s, self.p99_s = percentile(latencies, 50), percentile(latencies, 99)
        self.max_s = max(latencies) if latencies else math.nan

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {name: getattr(self, name) for name in self.DERIVED}

    @classmethod
    def load(cls, path: Path) -> Self:
        """A record from its saved JSON (``as_dict``); derived values and unknown keys are ignored."""
        data = json.loads(path.read_text())
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def problems_list(results: Iterable[WaitRecord]) -> str:
    """The ``Problems:`` paragraph under a results table ('' when every run was clean)."""
    lines = [f"- {r.label} N={r.n}: {'; '.join(r.problems)}" for r in results if r.problems]
    return "\n\nProblems:\n" + "\n".join(lines) if lines else ""


def write_generated(path: Path, block: str, *, title: str, prose: str) -> None:
    """Put ``block`` between the ``BEGIN``/``END`` markers of ``path``, keeping everything around them.

    A new file gets ``# title``, a pointer to ``prose`` (where the method and analysis are) and the block. A file
    without the markers keeps its text and gets the block appended, with a warning: results are never lost.
    """
    body = f"{BEGIN}\n{block.strip(chr(10))}\n{END}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {title}\n\nMethod and analysis: {prose}.\n\n{body}\n")
        return
    text = path.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        print(f"warning: {path} has no generated block; appended one at the end", file=sys.stderr)
        path.write_text(text.rstrip("\n") + "\n\n" + body + "\n")
        return
    path.write_text(text[:start] + body + text[end + len(END):])
