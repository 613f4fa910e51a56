"""Run the emulator as a real HTTP server: in a background thread, or as a separate process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_provider_magicvideo.emulator.config import EmulatorConfig, build_config, to_argv

_PACKAGE_PARENT = Path(__file__).resolve().parents[2]


class EmulatorClient:
    """Admin helpers shared by the thread and process handles."""

    root_url: str

    @property
    def base_url(self) -> str:
        """The API base URL, as ``base_url`` in the docs' sample (``.../v2``)."""
        return f"{self.root_url}/v2"

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.root_url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_emulator/stats")

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/_emulator/faults")

    def set_faults(self, profile: str | None = None, **knobs: Any) -> dict[str, Any]:
        """Replace the fault config: a profile name (``"a,b"`` composes) and/or explicit knobs."""
        spec: dict[str, Any] = dict(knobs)
        if profile is not None:
            spec["profile"] = profile
        return self._call("POST", "/_emulator/faults", spec)

    def complete_pending(self, at: float | None = None, spread: float = 0.0, seed: int = 0) -> int:
        """Make every job that is not final yet complete at ``at`` (epoch; default now), spread evenly over
        ``spread`` seconds in a seeded random order. Returns how many jobs were moved."""
        return self._call("POST", "/_emulator/complete_pending", {"at": at, "spread": spread, "seed": seed})["updated"]

    def reset(self) -> None:
        """Forget all jobs, log rows, counters and balances; restore the startup faults and wall time."""
        self._call("POST", "/_emulator/reset", {})

    def clock(self, **change: Any) -> dict[str, Any]:
        """Read the emulator clock, or change it: ``pause=True|False``, ``advance=SECONDS``, ``set=EPOCH``."""
        if not change:
            return self._call("GET", "/_emulator/clock")
        return self._call("POST", "/_emulator/clock", change)

    def pause_clock(self) -> float:
        return float(self.clock(pause=True)["now"])

    def resume_clock(self) -> float:
        return float(self.clock(pause=False)["now"])

    def advance_clock(self, seconds: float) -> float:
        return float(self.clock(advance=seconds)["now"])

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._call("GET", "/_emulator/health")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"emulator at {self.root_url} not ready after {timeout}s") from None
                time.sleep(0.05)


class EmulatorThread(EmulatorClient):
    """An emulator served by uvicorn in a daemon thread of this process."""

    def __init__(self, config: EmulatorConfig) -> None:
        import uvicorn  # deferred: importing this module must stay cheap

        from airflow_provider_magicvideo.emulator.app import create_app

        self.config = config
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((config.host, config.port))
        self.port = self._sock.getsockname()[1]
        self.root_url = f"http://{config.host}:{self.port}"
        self.app = create_app(config)
        uv_config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on")
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"magicvideo-emulator-{self.port}",
            daemon=True,
        )

    def start(self, timeout: float = 30.0) -> EmulatorThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("emulator thread failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def _config(overrides: dict[str, Any]) -> EmulatorConfig:
    overrides.setdefault("port", 0)
    return build_config(overrides)


@contextlib.contextmanager
def run_emulator(**config: Any) -> Iterator[EmulatorThread]:
    """Serve an emulator on a free port (unless ``port`` is given) for the ``with`` block.

    Keyword arguments are :class:`EmulatorConfig` fields, e.g. ``render_seconds=1, render="fast"``.
    """
    server = EmulatorThread(_config(dict(config))).start()
    try:
        yield server
    finally:
        server.stop()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmulatorProcess(EmulatorClient):
    """``python -m airflow_provider_magicvideo.emulator`` as a child process; output goes to ``log_path``.

    Keyword options are :class:`EmulatorConfig` fields (the same defaults as the CLI; ``port`` None picks a
    free port), turned into the CLI's flags by :func:`config.to_argv`; ``extra_args`` are appended verbatim.
    """

    def __init__(
        self,
        *,
        log_path: str | Path | None = None,
        extra_args: list[str] | None = None,
        **options: Any,
    ) -> None:
        host = options.get("host") or "127.0.0.1"
        options["port"] = options.get("port") or _free_port(host)
        self.config = build_config(options)
        self.host, self.port = host, self.config.port
        self.root_url = f"http://{host}:{self.port}"
        argv = to_argv(self.config)
        if "--port" not in argv:  # the CLI default port is 8787: always say which one
            argv += ["--port", str(self.port)]
        self.args = [sys.executable, "-m", "airflow_provider_magicvideo.emulator", *argv, *(extra_args or [])]
        if log_path is None:
            handle, name = tempfile.mkstemp(prefix="magicvideo-emulator-", suffix=".log")
            os.close(handle)
            log_path = name
        self.log_path = Path(log_path)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_PARENT), env.get("PYTHONPATH")]))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            self.wait_ready(timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"emulator process did not start; see {self.log_path}:\n{self.log()}"
            ) from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Abrupt stop (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def run_emulator_process(**kwargs: Any) -> Iterator[EmulatorProcess]:
    """Start :class:`EmulatorProcess` with ``kwargs``, wait until it answers, terminate it on exit."""
    with EmulatorProcess(**kwargs) as process:
        yield process
