"""Backend state and behaviour (moto's ``models.py``): generations, balances, the request log, faults, clock.

Routes in ``routes_api.py``/``routes_admin.py`` only translate HTTP to calls on :class:`Emulator`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import random
import re
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from airflow_provider_magicvideo.emulator import media, render, signing
from airflow_provider_magicvideo.emulator.catalogue import (
    ACTIVE_MODELS,
    CREDITS_PER_GENERATION,
    FINAL_STATUSES,
    MEDIA_FIELD,
    TEXT_TO_VIDEO,
    VIDEO_TO_VIDEO,
)
from airflow_provider_magicvideo.emulator.clock import Clock
from airflow_provider_magicvideo.emulator.config import EmulatorConfig
from airflow_provider_magicvideo.emulator.faults import FaultInjector, FaultKnobs
from airflow_provider_magicvideo.emulator.state import QUEUED_SHARE, Job, JobStore, LogRow

log = logging.getLogger("magicvideo.emulator")

# Shown (and refilled, like auto top-up) when no finite --credits is configured.
UNLIMITED_BALANCE = 100_000_000
GENERATION_ID = re.compile(r"^f_[A-Za-z0-9_-]{19}$")
# The documented X-Client-Request-Id alphabet; other values are silently dropped (the request still runs).
CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_id() -> str:
    """An id shaped like the real API's generation ids (``f_`` and 19 URL-safe characters)."""
    return "f_" + secrets.token_urlsafe(15)[:19]


def valid_client_request_id(value: str | None) -> str | None:
    return value if value is not None and CLIENT_REQUEST_ID.match(value) else None


class Emulator:
    """State and behaviour behind the routes; one instance per running server."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.store = JobStore(config.state_dir)
        self.faults = FaultInjector(FaultKnobs.build(config.faults), seed=config.seed)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if config.state_dir is not None:
            root = Path(config.state_dir)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="magicvideo-emulator-")
            root = Path(self._tmp.name)
        self.files_dir = root / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.secret = self._load_secret(root)
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor: concurrent.futures.Executor | None = None
        self._fast_clips: tuple[Path, Path] | None = None
        self._sequence = len(self.store.jobs)  # seeds the per-job "active" draw
        self._logs_calls: dict[str, list[float]] = {}

    @staticmethod
    def _load_secret(root: Path) -> bytes:
        """Persisted with the state, so URLs signed before a restart still verify after it."""
        path = root / "signing.key"
        if path.exists():
            return path.read_bytes()
        secret = secrets.token_bytes(32)
        path.write_bytes(secret)
        return secret

    def now(self) -> float:
        return self.clock.now()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.config.render == "fast":
            sound = await asyncio.to_thread(render.fast_clip, self.files_dir / "_fast_clip.mp4")
            silent = await asyncio.to_thread(render.fast_clip, self.files_dir / "_fast_clip_silent.mp4", False)
            self._fast_clips = (sound, silent)
        for job in list(self.store.jobs.values()):
            if job.unfinished:
                self._spawn(job)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.store.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def reset(self) -> None:
        """Forget jobs, the request log, counters and balances; restore the startup faults and real time."""
        for task in list(self._tasks):
            task.cancel()
        self.store.clear()
        self.clock.reset()
        self._sequence = 0
        self._logs_calls.clear()
        self.faults.configure(FaultKnobs.build(self.config.faults))

    def executor(self) -> concurrent.futures.Executor:
        """Bounded render pool. Threads: Pillow, NumPy and FFmpeg release the GIL in the heavy parts, and
        unlike a process pool they need no re-import of the caller's ``__main__`` (which breaks scripts)."""
        if self._executor is None:
            workers = max(1, self.config.render_workers)
            self._executor = concurrent.futures.ThreadPoolExecutor(workers, "magicvideo-render")
        return self._executor

    # ------------------------------------------------------------------ generations
    def _shows_active(self, model: str) -> bool:
        """Seeded per (seed, n-th job since start/reset): the same run shows "active" on the same jobs."""
        draw = random.Random(f"{self.config.seed}:active:{self._sequence}").random()
        return (model in ACTIVE_MODELS and draw < self.config.active_share) or self.faults.active()

    def create_job(self, model: str, template: str, source: str, client_request_id: str | None, key: str) -> Job:
        self._sequence += 1
        now = self.now()
        job = Job(
            id=new_id(),
            model=model,
            template=template,
            source=source,
            created_at=now,
            render_seconds=self.config.render_seconds,
            waits=self.faults.waits(),
            file_name=uuid.uuid4().hex,
            fps=self.config.fps,
            duration=self.config.duration,
            client_request_id=client_request_id,
            active=self._shows_active(model),
            key=key,
            price=CREDITS_PER_GENERATION,
        )
        if self.faults.render_error():
            job.fail(
                "RenderError", "The render failed on the worker. Please retry the generation.", job.deadline
            )
        self.store.save(job)
        if job.unfinished:
            self._spawn(job)
        return job

    def _spawn(self, job: Job) -> None:
        task = asyncio.get_running_loop().create_task(self._process(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, job: Job) -> None:
        """Fetch/decode the input, render it off the event loop, record the outcome."""
        visible = job.created_at + job.render_seconds * QUEUED_SHARE
        data: bytes | None = None
        field = MEDIA_FIELD[job.model]
        if job.model != TEXT_TO_VIDEO:
            try:
                data = await asyncio.to_thread(
                    media.resolve_media, job.source or "", self.config, job.model == VIDEO_TO_VIDEO
                )
            except media.MediaFetchError as exc:
                self._fail(job, "MediaDownloadError", f"{field}: {exc}", visible)
                return
            except media.MediaDecodeError as exc:
                self._fail(job, "InvalidMediaError", f"{field}: {exc}", visible)
                return
        clips = self._fast_clips
        spec = render.RenderSpec(
            model=job.model,
            template=job.template,
            out_path=str(self.files_dir / f"{job.id}.mp4"),
            media=data,
            prompt=job.source if data is None else None,
            fps=job.fps,
            duration=job.duration,
            fast=self.config.render == "fast",
            fast_clip=str(clips[0]) if clips else None,
            fast_clip_silent=str(clips[1]) if clips else None,
        )
        loop = asyncio.get_running_loop()
        try:
            path = await loop.run_in_executor(self.executor(), render.render, spec)
        except render.InvalidMediaError as exc:
            self._fail(job, "InvalidMediaError", str(exc), visible)
            return
        except Exception as exc:  # a render bug must end the job, not leave it generating forever
            log.exception("render of %s failed", job.id)
            self._fail(job, "RenderError", f"Render failed: {type(exc).__name__}", job.deadline)
            return
        job.finish(path, self.now())
        self.store.save(job)

    def _fail(self, job: Job, name: str, message: str, visible_at: float) -> None:
        job.fail(name, message, visible_at)
        self.store.save(job)

    def status_body(self, job: Job, base_url: str) -> dict[str, Any]:
        now = self.now()
        status = job.status_at(now)
        if status == "completed":
            url = signing.sign_url(
                self.secret,
                self.config.public_url or base_url,
                f"/files/{job.id}.mp4",
                f"{job.file_name}.mp4",
                self.faults.knobs.url_expiry,
                now,
            )
            return {"id": job.id, "status": "completed", "video": {"url": url}}
        if status == "error":
            return {"id": job.id, "status": "error", "error": {"name": job.error_name, "message": job.error_message}}
        if self.faults.unknown_status():
            status = "processing"
        return {"id": job.id, "status": status}

    def complete_pending(self, at: float | None, spread: float, seed: int) -> int:
        """Move the completion of every not-yet-final job to ``at`` (default now), evenly over ``spread`` s."""
        now = self.now()
        at = now if at is None else at
        pending = [job for job in self.store.jobs.values() if job.status_at(now) not in FINAL_STATUSES]
        random.Random(seed).shuffle(pending)
        for i, job in enumerate(pending):
            job.render_seconds = max(0.0, at + spread * i / len(pending) - job.created_at)
            self.store.save(job)
        return len(pending)

    # ------------------------------------------------------------------ keys and credits
    def authorize(self, authorization: str) -> tuple[str | None, str | None]:
        """(digest, key) of the caller's Bearer key, or (None, None). Only the digest is ever stored."""
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None, None
        if self.config.keys is not None and key not in self.config.keys:
            return None, None
        return hashlib.sha256(key.encode()).hexdigest(), key

    def _jobs_of(self, digest: str) -> list[Job]:
        return [job for job in self.store.jobs.values() if job.key == digest]

    def spent(self, digest: str) -> int:
        """Credits charged to a key: the price of each of its generations that has reported completed."""
        now = self.now()
        return sum(job.charge_at(now) for job in self._jobs_of(digest))

    def balance(self, digest: str) -> int:
        if self.faults.knobs.no_credits:
            return 0
        if self.config.credits is None:  # auto top-up: refilled by UNLIMITED_BALANCE whenever it runs out
            return UNLIMITED_BALANCE - self.spent(digest) % UNLIMITED_BALANCE
        return self.config.credits - self.spent(digest)

    def can_pay(self, digest: str, price: int = CREDITS_PER_GENERATION) -> bool:
        """Whether a new render may start: the balance minus the holds of renders still in flight covers it."""
        if self.faults.knobs.no_credits:
            return False
        if self.config.credits is None:
            return True
        now = self.now()
        held = sum(job.price for job in self._jobs_of(digest) if job.status_at(now) not in FINAL_STATUSES)
        return self.balance(digest) - held >= price

    # ------------------------------------------------------------------ request log
    def log_request(
        self,
        digest: str,
        http_status: int,
        model: str,
        request_id: str,
        inference_id: str,
        client_request_id: str | None,
        generation_id: str | None,
    ) -> None:
        created = self.now()
        delay = self.faults.log_delay(self.config.log_delay)
        self.store.add_row(
            LogRow(created, created + delay, digest, http_status, model, request_id, inference_id,
                   client_request_id, generation_id)
        )

    def row_outcome(self, row: LogRow, now: float) -> tuple[str, int]:
        """(status, credits) of a log row now: failed and free unless its generation is alive or completed."""
        if row.http_status >= 400:
            return "failed", 0
        job = self.store.get(row.generation_id or "")
        if job is None:
            return "succeeded", 0
        if job.status_at(now) == "error":
            return "failed", 0
        return "succeeded", job.charge_at(now)

    def logs_allowed(self, digest: str) -> bool:
        """The documented /v2/logs limit: ``logs_rate_limit`` requests per key per 60 s of the clock."""
        now = self.now()
        calls = [t for t in self._logs_calls.get(digest, []) if t > now - 60.0]
        allowed = len(calls) < self.config.logs_rate_limit
        if allowed:
            calls.append(now)
        self._logs_calls[digest] = calls
        return allowed

    def stats(self) -> dict[str, Any]:
        return self.store.stats(self.now())

    def record(self, method: str, path: str, label: str, job_id: str | None, started: float) -> None:
        counters = self.store.counters
        counter = counters.file_requests if path.startswith("/files/") else counters.requests
        counter[f"{method} {label}"] += 1
        log.info("%s %s %s gen=%s %.1fms", method, path, label, job_id or "-", (time.perf_counter() - started) * 1000)
