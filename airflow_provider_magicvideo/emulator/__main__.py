"""``magicvideo-emulator`` / ``python -m airflow_provider_magicvideo.emulator``: serve the emulator."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from airflow_provider_magicvideo.emulator.config import EmulatorConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="magicvideo-emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument(
        "--render-seconds", type=float, default=20.0, help="seconds from POST to completed (default 20)"
    )
    parser.add_argument(
        "--faults",
        default=os.environ.get("MAGICVIDEO_EMULATOR_FAULTS", "none"),
        help="fault profile(s), comma-separated (env MAGICVIDEO_EMULATOR_FAULTS)",
    )
    parser.add_argument("--state-dir", type=Path, help="persist jobs and files here across restarts")
    parser.add_argument("--render", choices=("full", "fast"), default="full")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--duration", type=float, default=5.0, help="clip length in seconds")
    parser.add_argument("--keys", help="comma-separated accepted API keys (default: any non-empty key)")
    parser.add_argument("--credits", type=int, help="per-key credit balance (default: unlimited)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="render worker processes")
    parser.add_argument(
        "--offline-media",
        type=Path,
        help="directory of files used (by URL basename) when a media URL cannot be fetched",
    )
    parser.add_argument("--public-url", help="base of file URLs (default: the Host the client used)")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import uvicorn

    from airflow_provider_magicvideo.emulator.app import create_app

    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        render_seconds=args.render_seconds,
        render=args.render,
        fps=args.fps,
        duration=args.duration,
        keys=frozenset(k for k in args.keys.split(",") if k) if args.keys else None,
        credits=args.credits,
        seed=args.seed,
        state_dir=args.state_dir,
        faults=args.faults,
        render_workers=args.workers,
        offline_media=args.offline_media,
        public_url=args.public_url,
    )
    logging.getLogger("magicvideo.emulator").info(
        "serving on http://%s:%s/v2 (render=%s, faults=%s)", args.host, args.port, args.render, args.faults
    )
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        log_level=args.log_level.lower(),
    )


if __name__ == "__main__":
    main()
