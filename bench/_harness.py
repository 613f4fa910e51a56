"""Parent side of ``python -m bench.trigger_scale``: emulator, render submission, child process, sampling, report."""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import psutil

from airflow_provider_magicvideo.emulator.server import EmulatorProcess
from tooling.results import WaitRecord, fmt, problems_list
from tooling.sampling import process_cpu, rss_mb

REPO = Path(__file__).resolve().parents[1]
CHILD = "bench._harness_child"  # run with ``-m`` from REPO, so the child imports this checkout
CONTENDERS = ("magicvideo", "http", "sample")
LABELS = {
    "magicvideo": "MagicVideoTrigger (this project)",
    "http": "HttpEventTrigger (providers-http)",
    "sample": "doc sample loop (thread/render)",
}
API_KEY = "bench-key-not-secret"
SAMPLE_EVERY = 0.1  # seconds between RSS samples of the child


# ------------------------------------------------------------------------------------------- results
@dataclass
class RunResult(WaitRecord):
    """One contender waiting on N renders in the child process (fields shared with the triggerer mode: base)."""

    via: str = "direct"  # "direct": trigger.run() driven by the harness; "triggerrunner": Airflow's TriggerRunner
    render_seconds: float = 0.0
    rss_peak_mb: float = 0.0
    maxrss_mb: float = 0.0  # the child's ru_maxrss at the end (includes import peaks)
    connects: int = 0
    peak_threads: int = 0
    submit_s: float = 0.0
    note: str = ""

    DERIVED: ClassVar[tuple[str, ...]] = ("cpu_per_poll_ms", "rss_per_render_kb", "req_per_s", "emu_util")

    @classmethod
    def skipped(cls, contender: str, n: int, poll: float, note: str) -> RunResult:
        return cls(contender=contender, n=n, poll=poll, note=note)

    @property
    def label(self) -> str:
        return LABELS[self.contender] + (" via TriggerRunner" if self.via == "triggerrunner" else "")

    @property
    def ran(self) -> bool:
        return not self.note.startswith("skipped")

    @property
    def rss_per_render_kb(self) -> float:
        return self.per_render_kb(self.rss_peak_mb)

    @property
    def emu_util(self) -> float:
        return self.emu_cpu_s / self.wall_s if self.wall_s else math.nan

    def summary(self) -> str:
        return (f"{self.ok}/{self.n} ok, {self.polls} polls, "
                f"CPU {self.cpu_s:.2f}s ({self.cpu_per_poll_ms:.3f} ms/poll), "
                f"RSS {self.rss_base_mb:.0f}->{self.rss_peak_mb:.0f} MB ({self.rss_per_render_kb:.1f} KB/render), "
                f"{self.connects} TCP opens, p50 {self.p50_s:.2f}s p99 {self.p99_s:.2f}s, "
                f"emulator CPU {self.emu_cpu_s:.1f}s, wall {self.wall_s:.1f}s"
                + (f"; problems: {self.problems[:3]}" if self.problems else ""))


# ---------------------------------------------------------------------------------------- emulator side
def gets_served(stats: dict[str, Any]) -> int:
    return sum(count for label, count in stats["requests"].items() if label.startswith("GET "))


async def submit_renders(base_url: str, n: int, spread: float, concurrency: int = 32) -> list[list[Any]]:
    """POST ``n`` text-to-video renders, paced evenly over ``spread`` seconds.

    Returns ``[[generation_id, offset_s], ...]``: offset = when the answer came back, relative to the first.
    """
    url = f"{base_url}/video/generations"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    answered: list[tuple[float, str]] = []
    slots = iter(range(n))
    start = time.monotonic() + 0.05

    async def worker(session: aiohttp.ClientSession) -> None:
        for k in slots:
            delay = start + k * spread / n - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body = {"model": "magic/text-to-video", "prompt": f"benchmark render {k}"}
            async with session.post(url, json=body, headers=headers) as response:
                payload = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"submit answered {response.status}: {payload}")
            answered.append((time.time(), payload["id"]))

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    answered.sort()
    first = answered[0][0]
    return [[gid, round(at - first, 4)] for at, gid in answered]


# ------------------------------------------------------------------------------------------- the child
def child_env(root_url: str, home: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.update({
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),  # Trigger.encrypt_kwargs (TriggerRunner)
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW_CONN_MAGICVIDEO_DEFAULT": json.dumps(
            {"conn_type": "magicvideo", "host": f"{root_url}/v2", "password": API_KEY}
        ),
        "AIRFLOW_CONN_HTTP_BENCH": json.dumps(
            {"conn_type": "http", "host": root_url, "extra": {"Authorization": f"Bearer {API_KEY}"}}
        ),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    })
    return env


class Child:
    """The contender's process: JSON lines over stdin/stdout, stderr to a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                env=env, text=True, bufsize=1, cwd=REPO,
            )
        self.process = psutil.Process(self.popen.pid)
        self._lines: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self._lines.append(json.loads(line))
                self._cond.notify_all()
        with self._cond:
            self._lines.append({"eof": True})
            self._cond.notify_all()

    def send(self, message: dict[str, Any]) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(message) + "\n")
        self.popen.stdin.flush()

    def poll_message(self) -> dict[str, Any] | None:
        with self._cond:
            return self._lines.pop(0) if self._lines else None

    def wait_message(self, timeout: float) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: self._lines, timeout):
                raise TimeoutError(f"child gave no answer in {timeout}s; log: {self.log_tail()}")
            message = self._lines.pop(0)
        if message.get("eof"):
            raise RuntimeError(f"child exited early; log: {self.log_tail()}")
        return message

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def close(self) -> None:
        if self.popen.poll() is None:
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def run_contender(contender: str, n: int, *, poll: float, render_seconds: float, via: str = "direct") -> RunResult:
    """One fresh emulator, N renders, one child process waiting on them with ``contender``."""
    if via != "direct" and contender == "sample":
        raise ValueError("the sample loop is not a trigger; it only runs directly")
    result = RunResult(contender=contender, n=n, poll=poll, render_seconds=render_seconds, via=via)
    home = Path(tempfile.mkdtemp(prefix=f"trigger-scale-{contender}-{n}-"))
    hard_timeout = poll + render_seconds + 12 * poll + 120
    # active_share=0: the emulator reports `active` for a share of text-to-video renders (as the API's
    # text-to-video doc loop expects), but the `sample` contender is the image/video docs' loop, which stops at
    # any status it does not list; every contender sees only queued/generating/completed.
    with EmulatorProcess(render="fast", render_seconds=render_seconds, log_level="warning", active_share=0,
                         log_path=home / "emulator.log") as emulator:
        assert emulator.process is not None
        emu_pid = emulator.process.pid
        child = Child(child_env(emulator.root_url, home), home / "child.log")
        try:
            child.send({"contender": contender, "port": emulator.port, "base_url": emulator.base_url,
                        "api_key": API_KEY, "poll": poll, "render_seconds": render_seconds,
                        "hard_timeout": hard_timeout, "via": via})
            child.wait_message(180)  # ready: imports done
            baseline = []
            for _ in range(5):
                baseline.append(rss_mb(child.process))
                time.sleep(0.05)
            result.rss_base_mb = statistics.median(baseline)

            started = time.monotonic()
            submitted = asyncio.run(submit_renders(emulator.base_url, n, spread=poll))
            # Each wait starts at a random phase within one poll interval (seeded): how a render's completion
            # falls between two polls is then uniform, as with real render durations; starting waits at the
            # submit offsets would put every render at the SAME phase and make the latency a constant.
            rng = random.Random(n)
            jobs = [[gid, round(rng.uniform(0, poll), 4)] for gid, _ in submitted]
            result.submit_s = time.monotonic() - started
            gets_before = gets_served(emulator.stats())
            emu_cpu_before = process_cpu(emu_pid)

            child.send({"jobs": jobs})
            peak = result.rss_base_mb
            message = None
            while message is None:
                try:
                    peak = max(peak, rss_mb(child.process))
                    result.peak_fds = max(result.peak_fds, child.process.num_fds())
                    result.peak_threads = max(result.peak_threads, child.process.num_threads())
                except psutil.NoSuchProcess:
                    break
                time.sleep(SAMPLE_EVERY)
                message = child.poll_message()
            if message is None or message.get("eof"):
                raise RuntimeError(f"{contender} child died; log: {child.log_tail()}")
            result.emu_cpu_s = process_cpu(emu_pid) - emu_cpu_before
            result.load_avg = os.getloadavg()[0]
            stats = emulator.stats()
        finally:
            child.close()

    result.rss_peak_mb = peak
    result.polls = gets_served(stats) - gets_before
    result.cpu_s = message["cpu_s"]
    result.wall_s = message["wall_s"]
    result.connects = message["connects"]
    result.maxrss_mb = message["maxrss_kb"] / 1024
    completed_at = stats["completed_at"]
    latencies = []
    seen: set[str] = set()
    for gid, status, at in message["events"]:
        if gid in seen:
            result.problems.append(f"second event for {gid}")
            continue
        seen.add(gid)
        result.events += 1
        if status == "success" and gid in completed_at:
            result.ok += 1
            latencies.append(at - completed_at[gid])
        elif len(result.problems) < 5:
            result.problems.append(f"{gid}: {status}")
    if result.events < n:
        result.problems.append(f"{n - result.events} waits gave no event within {hard_timeout:.0f}s")
    result.set_latencies(latencies)
    (home / "result.json").write_text(json.dumps(result.as_dict(), indent=1))
    (home / "events.json").write_text(json.dumps({
        "t_start": message["t_start"], "jobs": jobs, "completed_at": completed_at, "events": message["events"],
    }))
    return result


# -------------------------------------------------------------------------------------------- reports
def markdown_table(results: list[RunResult]) -> str:
    rows = [
        "| contender | N | events ok | status GETs | req/s | CPU s | CPU ms/poll | RSS base→peak MB "
        "| RSS KB/render | TCP opens | peak fds | p50 s | p99 s | max s | emulator CPU s (util, ms/req) | wall s "
        "| load |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        if not r.ran:
            rows.append(f"| {r.label} | {r.n:,} | {r.note} |" + " |" * 14)
            continue
        rows.append(
            f"| {r.label} | {r.n:,} | {r.ok:,}/{r.n:,} | {r.polls:,} | {fmt(r.req_per_s, 0)} "
            f"| {fmt(r.cpu_s, 2)} | {fmt(r.cpu_per_poll_ms, 3)} | {r.rss_base_mb:.0f}→{r.rss_peak_mb:.0f} "
            f"| {fmt(r.rss_per_render_kb, 1)} | {r.connects:,} | {r.peak_fds:,} | {fmt(r.p50_s, 2)} "
            f"| {fmt(r.p99_s, 2)} | {fmt(r.max_s, 2)} | {fmt(r.emu_cpu_s, 1)} ({r.emu_util:.0%}, "
            f"{1000 * r.emu_cpu_s / max(r.polls, 1):.2f}) | {fmt(r.wall_s, 1)} "
            f"| {r.load_avg:.1f} |"
        )
    return "\n".join(rows) + problems_list(results)


def targets_report(results: list[RunResult], *, poll: float) -> str:
    by = {(r.contender, r.n): r for r in results if r.ran and r.via == "direct"}
    lines = ["Targets (this project = MagicVideoTrigger, HTTP = HttpEventTrigger):", ""]

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**MISSED**"

    for n in sorted({r.n for r in results}):
        mv, http = by.get(("magicvideo", n)), by.get(("http", n))
        if mv is None:
            continue
        lines.append(f"- N={n:,}: all {n:,} waits completed in one process: {verdict(mv.ok == n)} ({mv.ok:,}/{n:,})")
        limit = poll + 1
        lines.append(f"  - p99 latency ≤ poll + 1 s = {limit:g} s: {verdict(mv.p99_s <= limit)} "
                     f"(p99 {mv.p99_s:.2f} s)")
        if http is not None and http.polls and mv.polls:
            cpu_ratio = http.cpu_per_poll_ms / mv.cpu_per_poll_ms
            lines.append(f"  - CPU per poll ≤ 1/10 of HTTP: {verdict(cpu_ratio >= 10)} "
                         f"({mv.cpu_per_poll_ms:.3f} vs {http.cpu_per_poll_ms:.3f} ms, 1/{cpu_ratio:.1f})")
            mv_rss, http_rss = mv.rss_per_render_kb, http.rss_per_render_kb
            rss_ratio = http_rss / mv_rss if mv_rss > 0 else math.inf
            lines.append(f"  - RSS per waiting render ≤ 1/5 of HTTP: {verdict(rss_ratio >= 5)} "
                         f"({mv_rss:.1f} vs {http_rss:.1f} KB, 1/{rss_ratio:.1f})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- plot
def write_plot(results: list[RunResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("CPU ms per poll", lambda r: r.cpu_per_poll_ms, True),
        ("peak RSS KB per waiting render", lambda r: r.rss_per_render_kb, True),
        ("TCP connections opened", lambda r: r.connects, True),
        ("p99 completion→event latency, s", lambda r: r.p99_s, False),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, (title, metric, log_y) in zip(axes.flat, panels, strict=True):
        for contender in CONTENDERS:
            for via, style in (("direct", "-"), ("triggerrunner", ":")):
                runs = [r for r in results if r.contender == contender and r.via == via and r.ran]
                points = sorted((r.n, metric(r)) for r in runs)
                points = [(x, y) for x, y in points if y is not None and not math.isnan(y)]
                if points:
                    ax.plot(*zip(*points, strict=True), style, marker="o", label=runs[0].label)
        ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("renders waited on (N)")
        ax.grid(True, which="both", alpha=0.3)
    polls = {r.poll for r in results}
    axes.flat[3].axhline(max(polls) + 1, color="grey", linestyle="--", label="poll + 1 s target")
    axes.flat[0].legend(fontsize=8)
    axes.flat[3].legend(fontsize=8)
    fig.suptitle("Waiting on N renders in one process")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
