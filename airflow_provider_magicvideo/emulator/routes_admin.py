"""Admin routes under ``/_emulator`` (moto's ``/moto-api``): no auth, never part of the emulated API."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from airflow_provider_magicvideo.emulator.backend import Emulator
from airflow_provider_magicvideo.emulator.errors import api_error, json_response
from airflow_provider_magicvideo.emulator.faults import FaultKnobs


async def _json(request: Request) -> Any:
    spec = json.loads(await request.body() or b"{}")
    if not isinstance(spec, dict):
        raise TypeError("expected a JSON object")
    return spec


def register(app: FastAPI, emu: Emulator) -> None:
    @app.get("/_emulator/health")
    async def health() -> Response:
        return json_response({"status": "ok", "render": emu.config.render})

    @app.get("/_emulator/stats")
    async def stats() -> Response:
        return json_response(emu.stats())

    @app.get("/_emulator/faults")
    async def get_faults() -> Response:
        return json_response(emu.faults.knobs.as_dict())

    @app.post("/_emulator/faults")
    async def set_faults(request: Request) -> Response:
        """Body ``{"profile": "a,b", <knob>: value, ...}``: replaces the whole fault configuration."""
        try:
            knobs = FaultKnobs.build(await _json(request))
        except (ValueError, TypeError) as exc:
            return api_error(400, str(exc), request.url.path)
        emu.faults.configure(knobs)
        return json_response(knobs.as_dict())

    @app.post("/_emulator/complete_pending")
    async def complete_pending(request: Request) -> Response:
        """Body ``{"at": EPOCH, "spread": S, "seed": N}``: every job not final yet completes at ``at``
        (default: the emulator clock's now), evenly over ``spread`` seconds in a seeded random order."""
        try:
            spec = await _json(request)
            at = None if spec.get("at") is None else float(spec["at"])
            spread = max(0.0, float(spec.get("spread") or 0.0))
            seed = int(spec.get("seed") or 0)
        except (ValueError, TypeError) as exc:
            return api_error(400, str(exc), request.url.path)
        return json_response({"updated": emu.complete_pending(at, spread, seed)})

    @app.get("/_emulator/clock")
    async def get_clock() -> Response:
        return json_response(emu.clock.as_dict())

    @app.post("/_emulator/clock")
    async def set_clock(request: Request) -> Response:
        """Body ``{"pause": true|false, "advance": SECONDS, "set": EPOCH}`` (any subset, applied in that order).

        Paused, every status, charge, URL expiry and log-row visibility stands still; ``advance`` moves them
        forward at once (e.g. 60 s of log ingestion without sleeping). ``reset`` returns to wall time."""
        try:
            spec = await _json(request)
            if spec.get("pause") is True:
                emu.clock.pause()
            elif spec.get("pause") is False:
                emu.clock.resume()
            if spec.get("advance") is not None:
                emu.clock.advance(float(spec["advance"]))
            if spec.get("set") is not None:
                emu.clock.set(float(spec["set"]))
        except (ValueError, TypeError) as exc:
            return api_error(400, str(exc), request.url.path)
        return json_response(emu.clock.as_dict())

    @app.get("/_emulator/balances")
    async def balances() -> Response:
        """Credits charged per key digest (keys themselves are never kept)."""
        digests = {job.key for job in emu.store.jobs.values() if job.key}
        return json_response({d: {"balance": emu.balance(d), "spent": emu.spent(d)} for d in sorted(digests)})

    @app.post("/_emulator/reset")
    async def reset() -> Response:
        emu.reset()
        return json_response({"status": "reset"})
