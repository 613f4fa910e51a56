"""Persistent state: generations (``Job``), the request log (``LogRow``) and counters.

Job progress and charges are derived from timestamps read off the emulator's clock, so a restart resumes them
and a paused clock holds them.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_magicvideo.emulator.catalogue import FINAL_STATUSES

QUEUED_SHARE = 0.1  # share of the render time a job reports "queued"
WAITING_SHARE = 0.1  # share after that a "waiting" job reports "waiting"
__all__ = ["FINAL_STATUSES", "QUEUED_SHARE", "Counters", "Job", "JobStore", "LogRow"]


@dataclass
class Job:
    id: str
    model: str
    template: str
    source: str | None  # the raw image_url/video_url/prompt; dropped once the job is final
    created_at: float
    render_seconds: float
    waits: bool  # whether this job passes through "waiting" (only when a fault profile asks)
    file_name: str  # the hex name used in the download's content-disposition
    fps: int = 24
    duration: float = 5.0
    client_request_id: str | None = None
    file_path: str | None = None
    file_ready_at: float | None = None
    error_name: str | None = None
    error_message: str | None = None
    fail_at: float | None = None  # when a known failure becomes visible
    active: bool = False  # whether the first half of its render reports "active" instead of "generating"
    key: str | None = None  # digest of the API key that created it (its balance pays on completion)
    price: int = 0  # credits charged when it reports "completed"

    @property
    def deadline(self) -> float:
        return self.created_at + self.render_seconds

    @property
    def completed_at(self) -> float | None:
        """The moment the job became completed: its deadline, or later if the render ran late."""
        if self.file_ready_at is None or self.error_name is not None:
            return None
        return max(self.deadline, self.file_ready_at)

    def status_at(self, now: float) -> str:
        if self.error_name is not None and now >= (self.fail_at or 0.0):
            return "error"
        elapsed = now - self.created_at
        queued_until = self.render_seconds * QUEUED_SHARE
        if elapsed < queued_until:
            return "queued"
        waiting_until = queued_until + (self.render_seconds * WAITING_SHARE if self.waits else 0.0)
        if elapsed < waiting_until:
            return "waiting"
        completed_at = self.completed_at
        if completed_at is not None and now >= completed_at:
            return "completed"
        if self.active and elapsed < (waiting_until + self.render_seconds) / 2:
            return "active"
        return "generating"

    def charge_at(self, now: float) -> int:
        """Credits this job has cost by ``now``: its price once completed, otherwise nothing."""
        completed_at = self.completed_at
        return self.price if completed_at is not None and now >= completed_at else 0

    def fail(self, name: str, message: str, visible_at: float) -> None:
        self.error_name, self.error_message, self.fail_at = name, message, visible_at
        self.source = None

    def finish(self, path: str, ready_at: float) -> None:
        self.file_path, self.file_ready_at = path, ready_at
        self.source = None

    @property
    def unfinished(self) -> bool:
        return self.error_name is None and self.file_ready_at is None


@dataclass
class LogRow:
    """One inference request as ``GET /v2/logs`` reports it; status and cost come from its job, if any."""

    created: float
    visible_at: float  # created + ingestion delay
    key: str  # digest of the caller's key
    http_status: int
    model: str
    request_id: str
    inference_id: str
    client_request_id: str | None = None
    generation_id: str | None = None  # the job it created, if it created one


@dataclass
class Counters:
    """Request accounting reported by ``GET /_emulator/stats``."""

    requests: Counter[str] = field(default_factory=Counter)
    file_requests: Counter[str] = field(default_factory=Counter)
    total_posts: int = 0
    posts_by_client_request_id: Counter[str] = field(default_factory=Counter)
    post_attempts_by_client_request_id: Counter[str] = field(default_factory=Counter)


class JobStore:
    """In-memory jobs and request log, written through to SQLite when a state directory is given."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.jobs: dict[str, Job] = {}
        self.rows: list[LogRow] = []
        self.counters = Counters()
        self._db: sqlite3.Connection | None = None
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(state_dir / "jobs.sqlite3", check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS requests (n INTEGER PRIMARY KEY, data TEXT NOT NULL)")
            self._db.commit()
            for (data,) in self._db.execute("SELECT data FROM jobs"):
                job = Job(**json.loads(data))
                self.jobs[job.id] = job
            self.rows = [LogRow(**json.loads(d)) for (d,) in self._db.execute("SELECT data FROM requests ORDER BY n")]

    def save(self, job: Job) -> None:
        self.jobs[job.id] = job
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO jobs (id, data) VALUES (?, ?)", (job.id, json.dumps(asdict(job)))
            )
            self._db.commit()

    def add_row(self, row: LogRow) -> None:
        self.rows.append(row)
        if self._db is not None:
            self._db.execute("INSERT INTO requests (data) VALUES (?)", (json.dumps(asdict(row)),))
            self._db.commit()

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def clear(self) -> None:
        self.jobs.clear()
        self.rows.clear()
        self.counters = Counters()
        if self._db is not None:
            self._db.execute("DELETE FROM jobs")
            self._db.execute("DELETE FROM requests")
            self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def stats(self, now: float) -> dict[str, Any]:
        by_status: Counter[str] = Counter()
        completed: dict[str, float] = {}
        for job in self.jobs.values():
            status = job.status_at(now)
            by_status[status] += 1
            if status == "completed" and job.completed_at is not None:
                completed[job.id] = job.completed_at
        c = self.counters
        return {
            "requests": dict(c.requests),
            "file_requests": dict(c.file_requests),
            "total_posts": c.total_posts,
            "jobs_created": len(self.jobs),
            "posts_by_client_request_id": dict(c.posts_by_client_request_id),
            "post_attempts_by_client_request_id": dict(c.post_attempts_by_client_request_id),
            "jobs_by_status": dict(by_status),
            "completed_at": completed,
            "log_rows": len(self.rows),
        }
