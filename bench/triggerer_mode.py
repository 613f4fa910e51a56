"""``python -m bench.trigger_scale --triggerer N``: the triggers in a real ``airflow triggerer`` on PostgreSQL.

One deployment per invocation (``tooling.deployment``, as the deployment tier): a fresh PostgreSQL database
(``airflow db migrate``; dropped at the end), ``api-server`` (the Execution API the task processes defer
through, and the REST API the run is triggered with), ``scheduler`` with the LocalExecutor, ``dag-processor``
on ``bench/dags/`` and, per contender, ONE fresh ``airflow triggerer``. One emulator process serves both
contenders (``render="fast"``, renders held pending with a very long render time, ``reset`` between
contenders).

What is measured and how: bench/results/trigger_scale_triggerer.md, "Method".
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from airflow_provider_magicvideo.emulator.server import EmulatorProcess
from bench._harness import API_KEY, LABELS, gets_served, submit_renders
from tooling.deployment import Deployment, drop_database, pg_admin, pg_user, random_text
from tooling.net import wait_for
from tooling.results import WaitRecord, fmt, percentile, problems_list
from tooling.sampling import client_ports, cpu_delta, established_to, process_cpu, tree_cpu, tree_fds, tree_rss_mb

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

DAGS = BENCH / "dags"
DAG_IDS = {"magicvideo": "bench_trigger_scale_magicvideo", "http": "bench_trigger_scale_http"}
HOLD_SECONDS = 7 * 24 * 3600  # emulator render time: renders stay pending until complete_pending releases them
LEFT_POLL = 0.2  # seconds between SQL polls for TIs leaving `deferred` after the release


def log(message: str) -> None:
    print(f"[triggerer] {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ deployment
def bench_env(n: int, poll: float, parallelism: int) -> dict[str, str]:
    return {
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(max(5000, 2 * n)),
        "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": str(max(5000, 2 * n)),
        "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, 2 * n)),
        "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": "512",
        "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, 2 * n)),
        # Airflow's defaults (the integration harness shortens them to catch failover quickly):
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "5",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "300",
        "MAGICVIDEO_BENCH_POLL": f"{poll:g}",
        # bench._harness_check (HttpEventTrigger's response_check_path) must import in the triggerer.
        # bench/preload/airflow_local_settings.py imports the DAG's modules before every fork (faster ramp).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), str(BENCH / "preload"),
                                                    os.environ.get("PYTHONPATH")])),
    }


# ------------------------------------------------------------------------------------------ results
@dataclass
class TriggererResult(WaitRecord):
    """One contender's N mapped deferrable tasks in a real triggerer (fields shared with trigger_scale: base).

    Here ``ok``/``events`` count TIs that left ``deferred`` after their render completed, and ``polls``,
    ``cpu_s`` (the triggerer tree) and ``emu_cpu_s`` are measured over the steady window only."""

    parallelism: int = 0
    ramp_s: float = math.nan  # DAG run triggered -> all N TIs deferred
    started_s: float = math.nan  # DAG run triggered -> all N triggers started in the triggerer
    window_s: float = 0.0
    cpu_parent_s: float = 0.0  # of which the `airflow triggerer` process itself (supervisor, DB, heartbeat)
    rss_steady_mb: float = 0.0
    tcp_opens: int = 0  # new client ports to the emulator in the window
    tcp_open_peak: int = 0  # triggerer sockets connected to the emulator (peak of samples)
    deferred_min: int = 0  # lowest count of deferred TIs seen in the window
    triggers_on_triggerer: int = 0  # trigger rows with triggerer_id = our job (min in the window)
    trigger_rows: int = 0
    fired_lines: int = 0  # "Trigger fired event" lines found in the per-TI trigger logs
    fired_p50_s: float = math.nan  # completion -> that line
    fired_p99_s: float = math.nan
    done_s: float = math.nan  # release -> DAG run finished
    load_before: float = 0.0
    final_states: dict[str, int] = field(default_factory=dict)  # TI states when the run was finished/stopped

    DERIVED: ClassVar[tuple[str, ...]] = ("cpu_per_poll_ms", "rss_per_trigger_kb")

    @property
    def label(self) -> str:
        return LABELS[self.contender] + " in `airflow triggerer`"

    @property
    def rss_per_trigger_kb(self) -> float:
        return self.per_render_kb(self.rss_steady_mb)

    @property
    def measured_s(self) -> float:
        return self.window_s

    def summary(self) -> str:
        return (f"{self.ok}/{self.n} ok; ramp {self.ramp_s:.0f}s; window {self.window_s:.0f}s: {self.polls} GETs, "
                f"CPU {self.cpu_s:.2f}s ({self.cpu_per_poll_ms:.3f} ms/poll), RSS {self.rss_base_mb:.0f}->"
                f"{self.rss_steady_mb:.0f} MB ({self.rss_per_trigger_kb:.1f} KB/trigger), {self.tcp_opens} TCP opens, "
                f"deferred min {self.deferred_min}, triggers on triggerer {self.triggers_on_triggerer}; "
                f"p50 {self.p50_s:.2f}s p99 {self.p99_s:.2f}s (fired lines {self.fired_lines}: p50 "
                f"{self.fired_p50_s:.2f}s p99 {self.fired_p99_s:.2f}s)"
                + (f"; problems {self.problems[:3]}" if self.problems else ""))


def markdown_table(results: list[TriggererResult]) -> str:
    rows = [
        "| contender | N | events ok | deferred / triggers on triggerer | status GETs | req/s | CPU s "
        "(triggerer / runner) | CPU ms/poll | RSS base→steady MB | RSS KB/trigger | TCP opens (open) | peak fds "
        "| p50 s | p99 s | max s | emulator CPU s (ms/req) | ramp s | window s | load |",
        "|---|---:|---:|---|---:|---:|---|---:|---|---:|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.label} | {r.n:,} | {r.ok:,}/{r.n:,} | {r.deferred_min:,} / {r.triggers_on_triggerer:,} "
            f"| {r.polls:,} | {fmt(r.req_per_s, 0)} | {r.cpu_s:.2f} ({r.cpu_parent_s:.2f} / "
            f"{r.cpu_s - r.cpu_parent_s:.2f}) | {fmt(r.cpu_per_poll_ms, 3)} "
            f"| {r.rss_base_mb:.0f}→{r.rss_steady_mb:.0f} | {fmt(r.rss_per_trigger_kb, 1)} "
            f"| {r.tcp_opens:,} ({r.tcp_open_peak:,}) | {r.peak_fds:,} "
            f"| {fmt(r.p50_s, 2)} | {fmt(r.p99_s, 2)} | {fmt(r.max_s, 2)} "
            f"| {r.emu_cpu_s:.1f} ({1000 * r.emu_cpu_s / max(r.polls, 1):.2f}) | {fmt(r.ramp_s, 0)} "
            f"| {r.window_s:.0f} | {r.load_before:.1f} → {r.load_avg:.1f} |"
        )
    return "\n".join(rows) + problems_list(results)


# ------------------------------------------------------------------------------------------ one contender
def trigger_logs(dep: Deployment, dag_id: str, run_id: str, job_id: int) -> dict[int, Path]:
    """map_index -> the per-TI log file our triggerer writes the trigger's lines to (JSON lines)."""
    base = dep.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / "task_id=wait"
    out: dict[int, Path] = {}
    for path in base.glob(f"map_index=*/attempt=*.log.trigger.{job_id}.log"):
        out[int(path.parent.name.split("=", 1)[1])] = path
    return out


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def log_events(path: Path, event: str) -> list[float]:
    """Epochs of the lines of one trigger log whose ``event`` starts with ``event``."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if event in line:
            with contextlib.suppress(ValueError, KeyError):
                record = json.loads(line)
                if str(record["event"]).startswith(event) or str(record["event"]).endswith(event):
                    found.append(_stamp(record["timestamp"]))
    return found


def started_triggers(dep: Deployment, dag_id: str, run_id: str, job_id: int) -> int:
    return sum(1 for path in trigger_logs(dep, dag_id, run_id, job_id).values() if log_events(path, "starting"))


def fired_events(dep: Deployment, dag_id: str, run_id: str, job_id: int) -> dict[int, float]:
    """map_index -> epoch of the triggerer's ``Trigger fired event`` line (the first one)."""
    fired = {}
    for index, path in trigger_logs(dep, dag_id, run_id, job_id).items():
        stamps = log_events(path, "Trigger fired event")
        if stamps:
            fired[index] = stamps[0]
    return fired


def ti_states(dep: Deployment, dag_id: str, run_id: str) -> dict[str, int]:
    rows = dep.sql("SELECT coalesce(state, 'none'), count(*) FROM task_instance WHERE dag_id = %s AND run_id = %s "
                   "AND task_id = 'wait' GROUP BY 1", dag_id, run_id)
    return {state: count for state, count in rows}


def triggers_by_triggerer(dep: Deployment, dag_id: str, run_id: str) -> dict[int | None, int]:
    rows = dep.sql("SELECT t.triggerer_id, count(*) FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
                   "WHERE ti.dag_id = %s AND ti.run_id = %s GROUP BY 1", dag_id, run_id)
    return {job: count for job, count in rows}


def run_one(dep: Deployment, emulator: EmulatorProcess, contender: str, n: int, *, poll: float,
            window: float, parallelism: int, ramp_timeout: float, finish_run: bool, runs: Path) -> TriggererResult:
    result = TriggererResult(contender=contender, n=n, poll=poll, parallelism=parallelism)
    started = time.monotonic()
    assert emulator.process is not None
    emu_pid, emu_port = emulator.process.pid, emulator.port
    dag_id = DAG_IDS[contender]
    emulator.reset()
    for proc in list(dep.triggerers.values()):  # a fresh triggerer per contender: its RSS baseline is clean
        proc.stop()
    dep.triggerers.clear()
    job_id = dep.start_triggerer()
    trig = dep.triggerers[job_id]
    log(f"{contender}: triggerer job {job_id} pid {trig.pid}; settling")
    time.sleep(10)
    samples = []
    for _ in range(5):
        samples.append(tree_rss_mb(trig.pid))
        time.sleep(0.5)
    result.rss_base_mb = statistics.median(samples)
    result.load_before = os.getloadavg()[0]

    import asyncio

    ids = [gid for gid, _ in asyncio.run(submit_renders(emulator.base_url, n, spread=1.0))]
    dep.wait_dag(dag_id, timeout=300)
    run_id = dep.trigger(dag_id, conf={"ids": ids}, run_id=f"bench__{contender}__{n}__{random_text(6)}")
    t_run = time.monotonic()
    log(f"{contender}: {n} renders submitted, run {run_id} triggered")

    # ---- ramp: every TI deferred, every trigger started in our triggerer
    last_print = 0.0
    while True:
        if not trig.alive():
            raise RuntimeError(f"triggerer exited; see {trig.log}")
        states = ti_states(dep, dag_id, run_id)
        if states.get("failed") or states.get("upstream_failed"):
            raise RuntimeError(f"{contender}: task instances failed: {states}; logs under {dep.home / 'logs'}")
        if states.get("deferred", 0) == n and math.isnan(result.ramp_s):
            result.ramp_s = time.monotonic() - t_run
        if not math.isnan(result.ramp_s):
            running = started_triggers(dep, dag_id, run_id, job_id)
            if running >= n:
                result.started_s = time.monotonic() - t_run
                break
        if time.monotonic() - last_print > 30:
            log(f"{contender}: {time.monotonic() - t_run:.0f}s after trigger: {states}")
            last_print = time.monotonic()
        if time.monotonic() - t_run > ramp_timeout:
            raise TimeoutError(f"{contender}: not all {n} TIs deferred after {ramp_timeout:.0f}s: {states}")
        time.sleep(2)
    log(f"{contender}: all {n} deferred after {result.ramp_s:.0f}s, all triggers started after "
        f"{result.started_s:.0f}s; two poll intervals to settle")
    time.sleep(2 * poll + 1)

    # ---- steady waiting window
    ports_before = client_ports(emu_port)
    rss, deferred, on_us = [], [], []
    cpu0, cpu_parent0 = tree_cpu(trig.pid), process_cpu(trig.pid)
    emu0, gets0, t0 = process_cpu(emu_pid), gets_served(emulator.stats()), time.monotonic()
    seen_ports: set[int] = set()
    while time.monotonic() - t0 < window:
        rss.append(tree_rss_mb(trig.pid))
        result.peak_fds = max(result.peak_fds, tree_fds(trig.pid))
        result.tcp_open_peak = max(result.tcp_open_peak, established_to(trig.pid, emu_port))
        seen_ports |= client_ports(emu_port)
        if len(rss) % 5 == 1:
            deferred.append(ti_states(dep, dag_id, run_id).get("deferred", 0))
            by = triggers_by_triggerer(dep, dag_id, run_id)
            on_us.append(by.get(job_id, 0))
            result.trigger_rows = max(result.trigger_rows, sum(by.values()))
        time.sleep(1)
    cpu1, cpu_parent1 = tree_cpu(trig.pid), process_cpu(trig.pid)
    emu1, gets1, t1 = process_cpu(emu_pid), gets_served(emulator.stats()), time.monotonic()
    seen_ports |= client_ports(emu_port)
    result.window_s = t1 - t0
    result.cpu_s = cpu_delta(cpu0, cpu1)
    result.cpu_parent_s = cpu_parent1 - cpu_parent0
    result.polls = gets1 - gets0
    result.emu_cpu_s = emu1 - emu0
    result.rss_steady_mb = statistics.median(rss)
    result.tcp_opens = len(seen_ports - ports_before)
    result.deferred_min = min(deferred)
    result.triggers_on_triggerer = min(on_us)
    log(f"{contender}: window done: {result.polls} GETs, CPU {result.cpu_s:.2f}s, deferred {deferred}, "
        f"triggers on {job_id}: {on_us}")

    # ---- release every render over one poll interval; wait for the run
    at = time.time() + 1.0
    moved = emulator.complete_pending(at=at, spread=poll)
    if moved != n:
        result.problems.append(f"complete_pending moved {moved} renders, not {n}")
    t_release = time.monotonic()
    left: dict[int, float] = {}  # map_index -> epoch first seen out of `deferred` (the event reached the DB)
    deadline = time.monotonic() + 8 * poll + 120
    while len(left) < n and time.monotonic() < deadline:
        now = time.time()
        for (index,) in dep.sql("SELECT map_index FROM task_instance WHERE dag_id = %s AND run_id = %s AND "
                                "task_id = 'wait' AND state IS DISTINCT FROM 'deferred'", dag_id, run_id):
            left.setdefault(index, now)
        time.sleep(LEFT_POLL)
    result.done_s = time.monotonic() - t_release
    result.load_avg = os.getloadavg()[0]
    if finish_run:
        wait_for(f"run {run_id} finished", lambda: dep.run_state(dag_id, run_id) in {"success", "failed"},
                 max(300.0, ramp_timeout), 2)
        states = ti_states(dep, dag_id, run_id)
        if states.get("success", 0) != n:
            result.problems.append(f"TI states at the end: {states}")
    else:
        # The N resumed tasks (execute_complete) would take as long as the ramp: stop the run instead, so they
        # do not compete with the next contender (the measurement ends with the events).
        states = ti_states(dep, dag_id, run_id)
        dep.rest("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}", json={"state": "failed"})
    result.final_states = states
    if states.get("failed") or states.get("up_for_retry"):
        result.problems.append(f"failed TIs when the run ended: {states}")
    time.sleep(1)
    completed_at = emulator.stats()["completed_at"]
    latencies = [left[i] - completed_at[gid] for i, gid in enumerate(ids) if i in left and gid in completed_at]
    result.events = result.ok = len(latencies)
    if result.events != n:
        result.problems.append(f"{n - result.events} TIs not seen leaving `deferred` after their render completed")
    result.set_latencies(latencies)
    # Secondary: the trigger runner's own "Trigger fired event" lines, where the per-TI trigger log has one
    # (the triggerer closes that log when the trigger ends, so the line is sometimes lost).
    fired = fired_events(dep, dag_id, run_id, job_id)
    runner = [fired[i] - completed_at[gid] for i, gid in enumerate(ids) if i in fired and gid in completed_at]
    result.fired_lines = len(runner)
    result.fired_p50_s, result.fired_p99_s = percentile(runner, 50), percentile(runner, 99)
    result.wall_s = time.monotonic() - started
    runs.mkdir(parents=True, exist_ok=True)
    data = result.as_dict() | {"run_id": run_id, "triggerer_job_id": job_id, "rss_samples_mb": rss,
                               "deferred_samples": deferred, "triggers_on_triggerer_samples": on_us}
    (runs / f"triggerer-{contender}-{n}.json").write_text(json.dumps(data, indent=1))
    return result


# ------------------------------------------------------------------------------------------ entry point
def run_triggerer(ns: dict[str, int], *, poll: float, window: float, parallelism: int, ramp_timeout: float,
                  finish_runs: bool = False, keep_home: bool = False,
                  runs: Path = BENCH / "results" / "runs") -> list[TriggererResult]:
    """Deployment up, each contender measured (per-run JSON into ``runs``), everything torn down after."""

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    user = pg_user()
    database = f"magicvideo_bench_{random_text(8)}"
    results: list[TriggererResult] = []
    emulator = EmulatorProcess(render="fast", render_seconds=HOLD_SECONDS, log_level="warning")
    dep: Deployment | None = None
    t_start = time.monotonic()
    try:
        emulator.start()
        log(f"emulator {emulator.root_url}; creating database {database} and migrating")
        pg_admin(f"CREATE DATABASE {database}", user)
        # The tier's deployment with the bench DAG folder, the HTTP provider's connection, ONE triggerer at a
        # time and the limits raised so N mapped task instances can all defer (``parallelism`` worker slots).
        dep = Deployment(executor="LocalExecutor", database=database, pg_user=user,
                         conns={"magicvideo_default": emulator.base_url}, api_key=API_KEY, dags_folder=DAGS,
                         extra_conns={"http_bench": json.dumps({"conn_type": "http", "host": emulator.root_url,
                                                                "extra": {"Authorization": f"Bearer {API_KEY}"}})},
                         extra_env=bench_env(max(ns.values()), poll, parallelism))
        dep.airflow("db", "migrate", timeout=900)
        log(f"migrated after {time.monotonic() - t_start:.0f}s; starting api-server, scheduler, dag-processor, "
            f"triggerer (home {dep.home})")
        dep.start(triggerers=1, health_timeout=300)
        log(f"deployment up after {time.monotonic() - t_start:.0f}s")
        for contender, n in ns.items():
            log(f"{contender} N={n} poll={poll:g}s parallelism={parallelism} ...")
            result = run_one(dep, emulator, contender, n, poll=poll, window=window, parallelism=parallelism,
                             ramp_timeout=ramp_timeout, finish_run=finish_runs, runs=runs)
            log(f"{contender}: {result.summary()}")
            results.append(result)
    finally:
        log(f"tearing down after {time.monotonic() - t_start:.0f}s")
        if dep is not None:
            dep.tear_down(keep_home=keep_home, log=log)
        else:
            drop_database(database, user)
        emulator.stop()
        with contextlib.suppress(OSError):
            emulator.log_path.unlink()
        signal.signal(signal.SIGTERM, previous)
    log(f"total {time.monotonic() - t_start:.0f}s")
    return results
