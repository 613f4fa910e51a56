"""``magicvideo-emulator`` / ``python -m airflow_provider_magicvideo.emulator``: serve the emulator.

An offline stand-in for the AI/ML API "magic" video endpoints, /v1/billing/balance and /v2/logs, with real
renders, seeded fault injection and admin routes under /_emulator.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from airflow_provider_magicvideo.emulator.config import add_arguments, from_namespace

EXTRA_HINT = "pip install 'airflow-provider-magicvideo[emulator]'"
# Import name -> distribution, for the message when the ``emulator`` extra is not installed.
REQUIRED = {"fastapi": "fastapi", "uvicorn": "uvicorn", "av": "av", "numpy": "numpy", "PIL": "pillow"}


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="magicvideo-emulator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(result)
    return result


def missing_dependencies() -> list[str]:
    missing = []
    for module, dist in REQUIRED.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    return missing


def main(argv: list[str] | None = None) -> None:
    config = from_namespace(parser().parse_args(argv))
    missing = missing_dependencies()
    if missing:
        sys.exit(
            f"magicvideo-emulator needs the 'emulator' extra (missing: {', '.join(missing)}). Install it with:\n"
            f"    {EXTRA_HINT}"
        )
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import uvicorn

    from airflow_provider_magicvideo.emulator.app import create_app

    logging.getLogger("magicvideo.emulator").info(
        "serving on http://%s:%s/v2 (render=%s, faults=%s)", config.host, config.port, config.render, config.faults
    )
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_config=None,
        access_log=False,
        log_level=config.log_level.lower(),
    )


if __name__ == "__main__":
    main()
