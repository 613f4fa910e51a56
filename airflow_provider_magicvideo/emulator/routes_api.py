"""The public routes (moto's ``responses.py``): the two video routes, balance, usage logs, signed downloads.

Each handler turns HTTP into calls on :class:`~airflow_provider_magicvideo.emulator.backend.Emulator` and adds
the documented tracing headers (``docs/capabilities/request-tracing-and-cost.md``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import FileResponse, Response

from airflow_provider_magicvideo.emulator import logs, signing
from airflow_provider_magicvideo.emulator.backend import (
    GENERATION_ID,
    Emulator,
    new_id,
    valid_client_request_id,
)
from airflow_provider_magicvideo.emulator.catalogue import (
    CREDITS_PER_GENERATION,
    CREDITS_PER_USD,
    DEFAULT_TEMPLATE,
    MEDIA_FIELD,
)
from airflow_provider_magicvideo.emulator.dropper import is_dropped, request_drop
from airflow_provider_magicvideo.emulator.errors import (
    BODY_VALIDATION,
    NO_CREDITS,
    QUERY_VALIDATION,
    SERVER_ERRORS,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    api_error,
    json_response,
    s3_error,
    timestamp,
)
from airflow_provider_magicvideo.emulator.validation import validate_body

GENERATIONS_PATH = "/v2/video/generations"
BALANCE_PATH = "/v1/billing/balance"
LOGS_PATH = "/v2/logs"
TRACING_HEADERS = "x-inference-id, x-client-request-id, x-aimlapi-credits-used, x-aimlapi-usd-spent"


class Call:
    """Per-request tracing: the request id (also the error body's ``requestId``) and the echoed client id."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.path = request.url.path
        self.started = time.perf_counter()
        self.request_id = str(uuid.uuid4())
        self.raw_client_id = request.headers.get("x-client-request-id")
        self.client_id = valid_client_request_id(self.raw_client_id)

    def error(self, emu: Emulator, status: int, message: str, **kw: Any) -> Response:
        return api_error(status, message, self.path, request_id=self.request_id, now=emu.now(), **kw)

    def traced(self, response: Response, inference_id: str | None, credits: int = 0) -> Response:
        headers = response.headers
        headers["x-request-id"] = self.request_id
        if inference_id is not None:
            headers["x-inference-id"] = inference_id
        if self.client_id is not None:
            headers["x-client-request-id"] = self.client_id
        headers["x-aimlapi-credits-used"] = str(credits)
        headers["x-aimlapi-usd-spent"] = f"{credits / CREDITS_PER_USD:.9f}"
        headers["access-control-expose-headers"] = TRACING_HEADERS
        return response


async def gate(emu: Emulator, call: Call) -> tuple[Response | None, str | None]:
    """Delay, auth and injected faults common to the video routes; returns (error, key digest)."""
    knobs = emu.faults.knobs
    if knobs.delay_seconds > 0:
        await asyncio.sleep(knobs.delay_seconds)
    digest, _ = emu.authorize(call.request.headers.get("authorization", ""))
    if digest is None:
        return call.error(emu, 401, UNAUTHORIZED), None
    if emu.faults.rate_limited():
        retry = {"Retry-After": str(knobs.retry_after)} if knobs.retry_after is not None else None
        return call.error(emu, 429, TOO_MANY_REQUESTS, headers=retry), digest
    code = emu.faults.server_error()
    if code is not None:
        return call.error(emu, code, SERVER_ERRORS.get(code, "Internal server error")), digest
    return None, digest


def register(app: FastAPI, emu: Emulator) -> None:
    @app.post(GENERATIONS_PATH)
    async def create_generation(request: Request) -> Response:
        call = Call(request)
        counters = emu.store.counters
        counters.total_posts += 1
        if call.raw_client_id:
            counters.post_attempts_by_client_request_id[call.raw_client_id] += 1
        response, job_id = await _create(call)
        label = "dropped" if is_dropped(request.scope) else str(response.status_code)
        emu.record(request.method, call.path, label, job_id, call.started)
        return response

    async def _create(call: Call) -> tuple[Response, str | None]:
        error, digest = await gate(emu, call)
        try:
            body = json.loads(await call.request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        raw_model = body.get("model") if isinstance(body, dict) else None
        model = raw_model if isinstance(raw_model, str) else ""
        valid_model: str | None = None
        if error is None and digest is not None:
            issues, valid_model = validate_body(body)
            if issues or valid_model is None:
                error = call.error(emu, 400, BODY_VALIDATION, meta=issues)
            elif not emu.can_pay(digest):
                error = call.error(emu, 403, NO_CREDITS)
        if error is not None or valid_model is None:
            error = error or call.error(emu, 401, UNAUTHORIZED)
            inference_id = new_id()  # "x-inference-id: always"; a failed request creates no generation
            if digest is not None:  # an unauthenticated request belongs to no key's log
                emu.log_request(digest, error.status_code, model, call.request_id, inference_id, call.client_id, None)
            return call.traced(error, inference_id), None
        assert digest is not None and isinstance(body, dict)
        model = valid_model
        template = body.get("template") or DEFAULT_TEMPLATE[model]
        job = emu.create_job(model, template, body[MEDIA_FIELD[model]], call.client_id, digest)
        emu.log_request(digest, 200, model, call.request_id, job.id, call.client_id, job.id)
        if call.raw_client_id:
            emu.store.counters.posts_by_client_request_id[call.raw_client_id] += 1
        if emu.faults.drop_after_post():
            request_drop(call.request.scope)
        # meta.usage.credits_used and the cost headers are a quote: the charge lands on "completed".
        out = {"id": job.id, "status": "queued", "meta": {"usage": {"credits_used": CREDITS_PER_GENERATION}}}
        return call.traced(json_response(out), job.id, CREDITS_PER_GENERATION), job.id

    @app.get(GENERATIONS_PATH)
    async def get_generation(request: Request) -> Response:
        call = Call(request)
        job_id = request.query_params.get("generation_id")
        # Documented: a poll echoes the id it was given when it looks like one we issue, else no header.
        inference_id = job_id if job_id and GENERATION_ID.match(job_id) else None
        response = call.traced(await _status(call, job_id), inference_id)
        emu.record(request.method, call.path, str(response.status_code), job_id, call.started)
        return response

    async def _status(call: Call, job_id: str | None) -> Response:
        error, _ = await gate(emu, call)
        if error is not None:
            return error
        if not job_id:
            issue = {"path": ["generation_id"], "code": "invalid_type", "expected": "string",
                     "received": "undefined", "message": "Required"}
            return call.error(emu, 400, QUERY_VALIDATION, meta=[issue])
        job = emu.store.get(job_id)
        if job is None:
            return call.error(emu, 404, f"Generation with id '{job_id}' not found")
        text = json.dumps(emu.status_body(job, str(call.request.base_url)), separators=(",", ":"))
        if emu.faults.malformed_json():
            text = text[: max(1, len(text) // 2)]  # a truncated body, as from a proxy cutting the stream
        return Response(text, 200, media_type="application/json")

    @app.get(BALANCE_PATH)
    async def balance(request: Request) -> Response:
        """The documented legacy balance route (``billing-balance-v1.json``): free, Bearer key."""
        call = Call(request)
        digest, _ = emu.authorize(request.headers.get("authorization", ""))
        if digest is None:
            response = call.error(emu, 401, UNAUTHORIZED)
        else:
            credits = emu.balance(digest)
            threshold = emu.config.low_balance_threshold
            response = json_response({
                "balance": credits,
                "lowBalance": credits < threshold,
                "lowBalanceThreshold": threshold,
                "lastUpdated": timestamp(emu.now()),
                "autoDebitStatus": "enabled" if emu.config.credits is None else "disabled",
                "status": "current",
                "statusExplanation": "Balance is current and up to date",
            })
        emu.record(request.method, call.path, str(response.status_code), None, call.started)
        return response

    @app.get(LOGS_PATH)
    async def request_logs(request: Request) -> Response:
        call = Call(request)
        response = _logs(call)
        emu.record(request.method, call.path, str(response.status_code), None, call.started)
        return response

    def _logs(call: Call) -> Response:
        digest, key = emu.authorize(call.request.headers.get("authorization", ""))
        if digest is None or key is None:
            return call.error(emu, 401, UNAUTHORIZED)
        if not emu.logs_allowed(digest):
            return call.error(emu, 429, TOO_MANY_REQUESTS)
        if emu.faults.logs_error():
            return call.error(emu, 503, SERVER_ERRORS[503])
        now = emu.now()
        try:
            query = logs.parse(call.request.query_params.multi_items(), now)
        except logs.QueryError as exc:
            return call.error(emu, 400, QUERY_VALIDATION, meta=exc.issues)
        if query.key_prefix is not None and not key.startswith(query.key_prefix):
            return call.error(emu, 403, "A regular key can only read its own logs")
        rows = []
        for row in reversed(emu.store.rows):  # newest first
            if row.key != digest or row.visible_at > now or not query.start <= row.created <= query.end:
                continue
            if not logs.model_matches(query.models, row.model):
                continue
            status, credits = emu.row_outcome(row, now)
            if query.statuses and status not in query.statuses:
                continue
            rows.append(logs.row_json(row, status, credits))
        return json_response(logs.page(rows, query))

    @app.api_route("/files/{name}", methods=["GET", "HEAD"])
    async def download(request: Request, name: str) -> Response:
        started = time.perf_counter()
        job_id = name.removesuffix(".mp4")
        response = _download(request, name, job_id)
        # FileResponse picks 206 only while sending; count what it will send.
        ranged = isinstance(response, FileResponse) and "range" in request.headers
        emu.record(request.method, request.url.path, "206" if ranged else str(response.status_code), job_id, started)
        return response

    def _download(request: Request, name: str, job_id: str) -> Response:
        path = f"/files/{name}"
        verdict = signing.verify(emu.secret, path, dict(request.query_params), emu.now())
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
        job = emu.store.get(job_id)
        if job is None or job.file_path is None or not Path(job.file_path).is_file():
            return s3_error(404, "NoSuchKey", "The specified key does not exist.", path)
        disposition = request.query_params.get("response-content-disposition")
        headers = {"Content-Disposition": disposition} if disposition else None
        return FileResponse(job.file_path, media_type="video/mp4", headers=headers)
