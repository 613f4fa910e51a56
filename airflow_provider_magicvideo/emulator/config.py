"""The emulator's configuration, in one place: the dataclass, its CLI flags and their help texts.

``magicvideo-emulator`` builds its argument parser from the field metadata here, and
:class:`~airflow_provider_magicvideo.emulator.server.EmulatorProcess` turns a config back into the same
flags, so the thread server, the child process and the CLI cannot drift apart.
"""

# ruff: noqa: RUF009  (_opt returns dataclasses.field(); the flag and help text ride in its metadata)
from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

# Documentation sample URLs that are unreachable offline; a generated stand-in image is used for them.
DEFAULT_OFFLINE_PREFIXES: tuple[str, ...] = ("https://raw.githubusercontent.com/aimlapi/",)
FAULTS_ENV = "MAGICVIDEO_EMULATOR_FAULTS"


def _opt(default: Any, help: str, *, flag: str | None = None, cli: bool = True, **kw: Any) -> Any:
    """A dataclass field carrying its CLI flag and help text."""
    meta = {"help": help, "flag": flag, "cli": cli}
    if default is dict:
        return field(default_factory=dict, metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


@dataclass
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour. Defaults mirror the real API's feel, sped up."""

    host: str = _opt("127.0.0.1", "interface to listen on")
    port: int = _opt(8787, "TCP port (0: any free port)")
    render_seconds: float = _opt(20.0, "seconds from POST to status completed")
    render: Literal["full", "fast"] = _opt(
        "full", "full: composited H.264/AAC render per job; fast: copy one tiny pre-encoded clip"
    )
    fps: int = _opt(24, "frames per second of rendered clips")
    duration: float = _opt(5.0, "clip length in seconds")
    keys: frozenset[str] | None = _opt(None, "comma-separated accepted API keys (default: any non-empty key)")
    credits: int | None = _opt(
        None,
        "starting balance of each key in credits; POSTs it cannot cover get 403 (default: unlimited, shown as "
        "100,000,000 credits with auto top-up)",
    )
    low_balance_threshold: int = _opt(10_000, "GET /v1/billing/balance reports lowBalance below this many credits")
    seed: int = _opt(0, "seed of every random choice (faults, which jobs show 'active', late log rows)")
    state_dir: Path | None = _opt(None, "persist jobs, request log and files here across restarts")
    faults: str | dict[str, object] = _opt(
        "none", f"fault profile(s), comma-separated; see /_emulator/faults (env {FAULTS_ENV})"
    )
    render_workers: int = _opt(2, "render worker threads", flag="--workers")
    fetch_timeout: float = _opt(5.0, "timeout in seconds when fetching an image_url/video_url")
    offline_media: Path | None = _opt(
        None, "directory of files used (by URL basename) when a media URL cannot be fetched"
    )
    offline_prefixes: tuple[str, ...] = _opt(
        DEFAULT_OFFLINE_PREFIXES, "comma-separated URL prefixes answered with a generated image when unreachable"
    )
    url_fixtures: dict[str, bytes | str | Path] = _opt(dict, "exact URL -> bytes or file path", cli=False)
    public_url: str | None = _opt(None, "base of file URLs (default: the Host the client used)")
    log_delay: float = _opt(1.0, "seconds until a request shows up in GET /v2/logs (analytics ingestion delay)")
    logs_rate_limit: int = _opt(200, "GET /v2/logs requests allowed per key per 60 s before 429")
    active_share: float = _opt(
        0.3, "share of text-to-video jobs that report 'active' for part of their render (seeded per job)"
    )
    log_level: str = _opt("info", "log level of the emulator's request log")


def _flag(f: Any) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def cli_fields() -> list[Any]:
    return [f for f in fields(EmulatorConfig) if f.metadata.get("cli", True)]


def _default(f: Any) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per CLI-able field, with the field's help text and default."""
    for f in cli_fields():
        default = _default(f)
        if f.name == "faults":
            default = os.environ.get(FAULTS_ENV, default)
        choices = ("full", "fast") if f.name == "render" else None
        shown = ",".join(default) if isinstance(default, tuple) else default
        help_text = f.metadata["help"] + ("" if shown is None else f" (default: {shown})")
        kind = _TYPES.get(f.name, str)
        parser.add_argument(
            _flag(f), dest=f.name, default=None, choices=choices, type=kind, help=help_text.replace("%", "%%")
        )


_INTS = ("port", "fps", "credits", "low_balance_threshold", "seed", "render_workers", "logs_rate_limit")
_FLOATS = ("render_seconds", "duration", "fetch_timeout", "log_delay", "active_share")
_TYPES: dict[str, type] = {**dict.fromkeys(_INTS, int), **dict.fromkeys(_FLOATS, float)}


def coerce(name: str, value: Any) -> Any:
    """Turn a CLI string or a loose Python value into the field's type."""
    if value is None:
        return None
    if name in _TYPES:
        return _TYPES[name](value)
    if name in ("state_dir", "offline_media"):
        return Path(value)
    if name == "keys":
        items = value.split(",") if isinstance(value, str) else value
        return frozenset(k for k in items if k)
    if name == "offline_prefixes":
        items = value.split(",") if isinstance(value, str) else value
        return tuple(p for p in items if p)
    return value


def build_config(options: Mapping[str, Any]) -> EmulatorConfig:
    """An :class:`EmulatorConfig` from keyword options; ``None`` values mean "the default"."""
    names = {f.name for f in fields(EmulatorConfig)}
    unknown = set(options) - names
    if unknown:
        raise TypeError(f"unknown emulator option(s): {', '.join(sorted(unknown))}")
    return EmulatorConfig(**{k: coerce(k, v) for k, v in options.items() if v is not None})


def from_namespace(args: argparse.Namespace) -> EmulatorConfig:
    options = {f.name: getattr(args, f.name) for f in cli_fields()}
    if options["faults"] is None:
        options["faults"] = os.environ.get(FAULTS_ENV)
    return build_config(options)


def to_argv(config: EmulatorConfig) -> list[str]:
    """The CLI flags that rebuild ``config`` in a child process (only values that differ from the default)."""
    argv: list[str] = []
    python_only = [f.name for f in fields(EmulatorConfig) if not f.metadata.get("cli", True)]
    for name in python_only:
        if getattr(config, name) != _default(next(f for f in fields(EmulatorConfig) if f.name == name)):
            raise TypeError(f"{name} cannot be passed to a child process; use run_emulator() (a thread)")
    for f in cli_fields():
        value = getattr(config, f.name)
        if value is None or value == _default(f):
            continue
        if f.name == "faults" and not isinstance(value, str):
            raise TypeError("a child process takes fault profiles by name; set knobs with set_faults()")
        if isinstance(value, frozenset | tuple | list):
            value = ",".join(sorted(value) if isinstance(value, frozenset) else value)
        argv += [_flag(f), str(value)]
    return argv
