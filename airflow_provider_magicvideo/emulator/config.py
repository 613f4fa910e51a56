"""Emulator configuration: one dataclass shared by the CLI, the thread server and the pytest plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# Documentation sample URLs that are unreachable offline; a generated stand-in image is used for them.
DEFAULT_OFFLINE_PREFIXES: tuple[str, ...] = ("https://raw.githubusercontent.com/aimlapi/",)

CREDITS_PER_GENERATION = 1_050_000
# AI/ML API bills 1 USD per 2,000,000 credits; used only for the x-aimlapi-usd-spent header.
CREDITS_PER_USD = 2_000_000


@dataclass
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour. Defaults mirror the real API's feel, sped up."""

    host: str = "127.0.0.1"
    port: int = 8787
    render_seconds: float = 20.0
    render: Literal["full", "fast"] = "full"
    fps: int = 24
    duration: float = 5.0
    keys: frozenset[str] | None = None  # None: any non-empty key is accepted
    credits: int | None = None  # per-key balance in credits; None: unlimited
    seed: int = 0
    state_dir: Path | None = None
    faults: str | dict[str, object] = "none"
    render_workers: int = 2
    fetch_timeout: float = 5.0
    offline_media: Path | None = None  # directory: fallback files matched by URL basename
    offline_prefixes: tuple[str, ...] = DEFAULT_OFFLINE_PREFIXES
    url_fixtures: dict[str, bytes | str | Path] = field(default_factory=dict)  # exact URL -> bytes/path
    public_url: str | None = None  # base for file URLs; default: the Host the client used
