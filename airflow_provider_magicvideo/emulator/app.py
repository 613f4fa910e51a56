"""The FastAPI application: /v2 video generation API, signed file downloads, /_emulator admin."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import random
import secrets
import socket
import struct
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, Response

from airflow_provider_magicvideo.emulator import media, render, signing
from airflow_provider_magicvideo.emulator.config import (
    CREDITS_PER_GENERATION,
    CREDITS_PER_USD,
    EmulatorConfig,
)
from airflow_provider_magicvideo.emulator.errors import (
    NO_CREDITS,
    SERVER_ERRORS,
    UNAUTHORIZED,
    api_error,
    json_response,
    s3_error,
)
from airflow_provider_magicvideo.emulator.faults import FaultInjector, FaultKnobs
from airflow_provider_magicvideo.emulator.state import QUEUED_SHARE, Job, JobStore
from airflow_provider_magicvideo.emulator.validation import validate_body
from airflow_provider_magicvideo.templates import DEFAULT_TEMPLATE, Model

log = logging.getLogger("magicvideo.emulator")

GENERATIONS_PATH = "/v2/video/generations"
DROP_KEY = "magicvideo.drop_connection"
WAITING_SHARE_OF_JOBS = 0.3

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


class Emulator:
    """State and behaviour behind the routes; one instance per running server."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
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
        self.balances: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor: concurrent.futures.Executor | None = None
        self._fast_clip: Path | None = None

    @staticmethod
    def _load_secret(root: Path) -> bytes:
        """Persisted with the state, so URLs signed before a restart still verify after it."""
        path = root / "signing.key"
        if path.exists():
            return path.read_bytes()
        secret = secrets.token_bytes(32)
        path.write_bytes(secret)
        return secret

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.config.render == "fast":
            self._fast_clip = await asyncio.to_thread(render.fast_clip, self.files_dir / "_fast_clip.mp4")
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
        for task in list(self._tasks):
            task.cancel()
        self.store.clear()
        self.balances.clear()
        self.faults.configure(FaultKnobs.build(self.config.faults))

    def executor(self) -> concurrent.futures.Executor:
        """Bounded render pool. Threads: Pillow, NumPy and FFmpeg release the GIL in the heavy parts, and
        unlike a process pool they need no re-import of the caller's ``__main__`` (which breaks scripts)."""
        if self._executor is None:
            workers = max(1, self.config.render_workers)
            self._executor = concurrent.futures.ThreadPoolExecutor(workers, "magicvideo-render")
        return self._executor

    # ------------------------------------------------------------------ jobs
    def create_job(self, model: Model, template: str, source: str, client_request_id: str | None) -> Job:
        job_id = "f_" + secrets.token_urlsafe(14)[:19]
        waits = random.Random(f"{self.config.seed}:{job_id}").random() < WAITING_SHARE_OF_JOBS
        job = Job(
            id=job_id,
            model=model.value,
            template=template,
            source=source,
            created_at=time.time(),
            render_seconds=self.config.render_seconds,
            waits=waits,
            file_name=uuid.uuid4().hex,
            fps=self.config.fps,
            duration=self.config.duration,
            client_request_id=client_request_id,
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
        model = Model(job.model)
        visible = job.created_at + job.render_seconds * QUEUED_SHARE
        data: bytes | None = None
        if model is not Model.TEXT_TO_VIDEO:
            try:
                data = await asyncio.to_thread(
                    media.resolve_media, job.source or "", self.config, model is Model.VIDEO_TO_VIDEO
                )
            except media.MediaFetchError as exc:
                self._fail(job, "MediaDownloadError", f"{model.media_field}: {exc}", visible)
                return
            except media.MediaDecodeError as exc:
                self._fail(job, "InvalidMediaError", f"{model.media_field}: {exc}", visible)
                return
        spec = render.RenderSpec(
            model=job.model,
            template=job.template,
            out_path=str(self.files_dir / f"{job.id}.mp4"),
            media=data,
            prompt=job.source if data is None else None,
            fps=job.fps,
            duration=job.duration,
            fast=self.config.render == "fast",
            fast_clip=str(self._fast_clip) if self._fast_clip else None,
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
        job.finish(path, time.time())
        self.store.save(job)

    def _fail(self, job: Job, name: str, message: str, visible_at: float) -> None:
        job.fail(name, message, visible_at)
        self.store.save(job)

    def status_body(self, job: Job, request: Request, now: float) -> dict[str, Any]:
        status = job.status_at(now)
        if status == "completed":
            base = self.config.public_url or str(request.base_url)
            url = signing.sign_url(
                self.secret,
                base,
                f"/files/{job.id}.mp4",
                f"{job.file_name}.mp4",
                self.faults.knobs.url_expiry,
                now,
            )
            return {"id": job.id, "status": "completed", "video": {"url": url}}
        if status == "error":
            return {
                "id": job.id,
                "status": "error",
                "error": {"name": job.error_name, "message": job.error_message},
            }
        if self.faults.unknown_status():
            status = "processing"
        return {"id": job.id, "status": status}

    # ------------------------------------------------------------------ request plumbing
    def authorize(self, request: Request) -> str | None:
        """A digest of the caller's key, or None; the key itself is never kept or logged."""
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        if self.config.keys is not None and key not in self.config.keys:
            return None
        return hashlib.sha256(key.encode()).hexdigest()

    async def gate(self, request: Request) -> tuple[Response | None, str | None]:
        """Delay, auth and injected faults common to every /v2 route; returns (error, key digest)."""
        knobs = self.faults.knobs
        if knobs.delay_seconds > 0:
            await asyncio.sleep(knobs.delay_seconds)
        path = request.url.path
        digest = self.authorize(request)
        if digest is None:
            return api_error(401, UNAUTHORIZED, path), None
        if self.faults.rate_limited():
            return api_error(
                429,
                "Too many requests, please slow down and retry later.",
                path,
                headers={"Retry-After": str(knobs.retry_after)},
            ), digest
        code = self.faults.server_error()
        if code is not None:
            return api_error(code, SERVER_ERRORS.get(code, "Server error"), path), digest
        return None, digest

    def charge(self, digest: str) -> bool:
        if self.faults.knobs.no_credits:
            return False
        if self.config.credits is None:
            return True
        balance = self.balances.setdefault(digest, self.config.credits)
        if balance < CREDITS_PER_GENERATION:
            return False
        self.balances[digest] = balance - CREDITS_PER_GENERATION
        return True

    def record(
        self,
        request: Request,
        response: Response | None,
        job_id: str | None,
        started: float,
        status_label: str | None = None,
    ) -> None:
        label = status_label or str(response.status_code if response is not None else "dropped")
        counter = (
            self.store.counters.file_requests
            if request.url.path.startswith("/files/")
            else self.store.counters.requests
        )
        counter[f"{request.method} {label}"] += 1
        log.info(
            "%s %s %s gen=%s %.1fms",
            request.method,
            request.url.path,
            label,
            job_id or "-",
            (time.perf_counter() - started) * 1000,
        )


def create_app(config: EmulatorConfig) -> ASGIApp:
    """Build the ASGI app (FastAPI wrapped by the connection dropper)."""
    emulator = Emulator(config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await emulator.start()
        try:
            yield
        finally:
            await emulator.stop()

    app = FastAPI(
        title="magicvideo emulator", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.emulator = emulator

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        started = time.perf_counter()
        message = "Not found" if exc.status_code == 404 else str(exc.detail)
        response = api_error(exc.status_code, message, request.url.path)
        emulator.record(request, response, None, started)
        return response

    @app.post(GENERATIONS_PATH)
    async def create_generation(request: Request) -> Response:
        started = time.perf_counter()
        client_id = request.headers.get("x-client-request-id")
        counters = emulator.store.counters
        counters.total_posts += 1
        if client_id:
            counters.post_attempts_by_client_request_id[client_id] += 1
        response, job_id = await _create(request, client_id)
        emulator.record(
            request, response, job_id, started, "dropped" if request.scope.get(DROP_KEY) else None
        )
        return response

    async def _create(request: Request, client_id: str | None) -> tuple[Response, str | None]:
        path = request.url.path
        error, digest = await emulator.gate(request)
        if error is not None or digest is None:
            return error or api_error(401, UNAUTHORIZED, path), None
        try:
            body = json.loads(await request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        issues, model = validate_body(body)
        if issues or model is None:
            return api_error(400, "Body validation error!", path, meta=issues), None
        if not emulator.charge(digest):
            return api_error(403, NO_CREDITS, path), None
        template = body.get("template") or DEFAULT_TEMPLATE[model]
        job = emulator.create_job(model, template, body[model.media_field], client_id)
        if client_id:
            emulator.store.counters.posts_by_client_request_id[client_id] += 1
        if emulator.faults.drop_after_post():
            request.scope[DROP_KEY] = True
        headers = {
            "x-aimlapi-credits-used": str(CREDITS_PER_GENERATION),
            "x-aimlapi-usd-spent": f"{CREDITS_PER_GENERATION / CREDITS_PER_USD:.6f}",
            "x-inference-id": str(uuid.uuid4()),
            "x-request-id": str(uuid.uuid4()),
        }
        body_out = {
            "id": job.id,
            "status": "queued",
            "meta": {"usage": {"credits_used": CREDITS_PER_GENERATION}},
        }
        return json_response(body_out, 200, headers), job.id

    @app.get(GENERATIONS_PATH)
    async def get_generation(request: Request) -> Response:
        started = time.perf_counter()
        job_id = request.query_params.get("generation_id")
        response = await _status(request, job_id)
        emulator.record(request, response, job_id, started)
        return response

    async def _status(request: Request, job_id: str | None) -> Response:
        path = request.url.path
        error, _ = await emulator.gate(request)
        if error is not None:
            return error
        if not job_id:
            issue = {
                "path": ["generation_id"],
                "code": "invalid_type",
                "expected": "string",
                "received": "undefined",
                "message": "Required",
            }
            return api_error(400, "Query validation error!", path, meta=[issue])
        job = emulator.store.get(job_id)
        if job is None:
            return api_error(404, f"Generation with id '{job_id}' not found", path)
        text = json.dumps(emulator.status_body(job, request, time.time()), separators=(",", ":"))
        if emulator.faults.malformed_json():
            text = text[: max(1, len(text) // 2)]  # a truncated body, as from a proxy cutting the stream
        return Response(text, 200, media_type="application/json")

    @app.api_route("/files/{name}", methods=["GET", "HEAD"])
    async def download(request: Request, name: str) -> Response:
        started = time.perf_counter()
        job_id = name.removesuffix(".mp4")
        response = _download(request, name, job_id)
        # FileResponse picks 206 only while sending; count what it will send.
        ranged = isinstance(response, FileResponse) and "range" in request.headers
        emulator.record(request, response, job_id, started, "206" if ranged else None)
        return response

    def _download(request: Request, name: str, job_id: str) -> Response:
        path = f"/files/{name}"
        verdict = signing.verify(emulator.secret, path, dict(request.query_params))
        if verdict is signing.Verdict.MISSING:
            return s3_error(
                403,
                "AccessDenied",
                "Query-string authentication requires the Signature, Expires and Credential parameters",
                path,
            )
        if verdict is signing.Verdict.BAD_SIGNATURE:
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
                path,
            )
        if verdict is signing.Verdict.EXPIRED:
            return s3_error(403, "AccessDenied", "Request has expired", path)
        job = emulator.store.get(job_id)
        if job is None or job.file_path is None or not Path(job.file_path).is_file():
            return s3_error(404, "NoSuchKey", "The specified key does not exist.", path)
        disposition = request.query_params.get("response-content-disposition")
        headers = {"Content-Disposition": disposition} if disposition else None
        return FileResponse(job.file_path, media_type="video/mp4", headers=headers)

    @app.get("/_emulator/health")
    async def health() -> Response:
        return json_response({"status": "ok", "render": config.render})

    @app.get("/_emulator/stats")
    async def stats() -> Response:
        return json_response(emulator.store.stats())

    @app.get("/_emulator/faults")
    async def get_faults() -> Response:
        return json_response(emulator.faults.knobs.as_dict())

    @app.post("/_emulator/faults")
    async def set_faults(request: Request) -> Response:
        try:
            spec = json.loads(await request.body() or b"{}")
            knobs = FaultKnobs.build(spec)
        except (ValueError, TypeError) as exc:
            return api_error(400, str(exc), request.url.path)
        emulator.faults.configure(knobs)
        return json_response(knobs.as_dict())

    @app.post("/_emulator/complete_pending")
    async def complete_pending(request: Request) -> Response:
        """Move the completion of every not-yet-final job to ``at`` (epoch, default now), evenly over ``spread`` s."""
        try:
            spec = json.loads(await request.body() or b"{}")
            now = time.time()
            at, spread = float(spec.get("at") or now), max(0.0, float(spec.get("spread") or 0.0))
        except (ValueError, TypeError, AttributeError) as exc:
            return api_error(400, str(exc), request.url.path)
        pending = [job for job in emulator.store.jobs.values() if job.status_at(now) not in ("completed", "error")]
        random.Random(spec.get("seed", 0)).shuffle(pending)
        for i, job in enumerate(pending):
            job.render_seconds = max(0.0, at + spread * i / len(pending) - job.created_at)
            emulator.store.save(job)
        return json_response({"updated": len(pending)})

    @app.post("/_emulator/reset")
    async def reset() -> Response:
        emulator.reset()
        return json_response({"status": "reset"})

    return ConnectionDropper(app)


class ConnectionDropper:
    """Outermost ASGI layer: resets the TCP connection instead of answering when a route asks for it.

    Reaching uvicorn's transport through ``send.__self__`` is the only way to close a socket without
    any HTTP bytes; raising would make uvicorn answer 500 instead.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.state = app.state

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dropped = False

        async def guarded_send(message: Message) -> None:
            nonlocal dropped
            if scope.get(DROP_KEY):
                if not dropped:
                    dropped = True
                    _abort(send)
                return
            await send(message)

        await self.app(scope, receive, guarded_send)
        if dropped:
            await asyncio.sleep(0)  # let connection_lost run so uvicorn does not try to answer 500


def _abort(send: Callable[[Message], Awaitable[None]]) -> None:
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: no transport")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # linger 0: the peer gets RST, not an orderly FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    if cycle is not None:
        cycle.disconnected = True


__all__ = ["ConnectionDropper", "Emulator", "create_app"]
