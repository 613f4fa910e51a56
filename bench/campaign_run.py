"""The campaign benchmark's runner: one real deployment, then every (path, N) as one DAG run measured from outside.

Deployment (``tooling.deployment``, the deployment tier's harness): a fresh PostgreSQL database (``airflow db
migrate`` with the benchmark's settings, dropped at the end), ``api-server``, ``scheduler`` with the
LocalExecutor, ``dag-processor`` on ``bench/dags/campaign``, ONE ``triggerer``, and the emulator in its own
process (``render="fast"``, a fixed ``render_seconds``). What each number means: ``bench/results/campaign.md``.

While a run is in flight the benchmark talks only to PostgreSQL (run state), never to the api-server, so the
api-server's CPU is the deployment's own (task processes use its Execution API).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_magicvideo.emulator.server import EmulatorProcess
from bench.campaign_paths import DAGS, CampaignPath
from bench.campaign_sampler import SCHEDULER, Sampler
from tooling.deployment import Deployment, drop_database, pg_admin, pg_user, random_text
from tooling.results import percentile

REPO = Path(__file__).resolve().parents[1]
# The deliver step logs its own duration ("Delivered generation G to URI: ... 0.05s"): one delivery's time.
DELIVERED = re.compile(r"Delivered generation (\S+) to (\S+?): .*?(\d+\.\d+)s")
# The LocalExecutor's supervisor logs how long it ran each workload (one task process: a slot occupied).
WORKLOAD = re.compile(r"Workload finished.*?duration=([\d.]+).*?workload_id=([0-9a-f-]+)")


def log(message: str) -> None:
    print(f"[campaign] {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


@dataclass
class CampaignResult:
    """One (path, N). ``status``: ``ok``, ``failed`` (the run or a check failed: see ``problems``) or ``skipped``."""

    path: str
    n: int
    render_s: float
    poll_s: float
    parallelism: int
    status: str = "ok"
    run_state: str = ""
    wall_s: float = float("nan")  # DAG run start -> last MP4 written (file mtime)
    run_s: float = float("nan")  # DAG run start -> DAG run end (includes bookkeeping after the last MP4)
    delivery_s: float = float("nan")  # median of the deliveries' own logged durations in this run
    ideal_s: float = float("nan")  # render_s + poll_s + delivery_s
    ratio: float = float("nan")  # wall_s / ideal_s
    renders_created: int = 0  # emulator jobs created (reset before the run)
    total_posts: int = 0  # job-creating POSTs the emulator counted
    videos_expected: int = 0
    videos_verified: int = 0  # file present, size and sha256 as the task reported, `ftyp` box at offset 4
    task_instances: int = 0
    ti_per_render: float = float("nan")
    retried_tis: int = 0
    worker_slot_s: float = 0.0  # sum of task-process lifetimes, psutil (no process while deferred)
    task_processes: int = 0  # task processes run (a deferred task runs two: before and after its deferral)
    worker_slot_s_logged: float = 0.0  # cross-check: the supervisors' logged workload durations ...
    workloads_logged: int = 0  # ... and how many such lines were found (some are lost in the shared log)
    worker_slot_s_per_render: float = float("nan")
    ti_span_s_per_render: float = float("nan")  # sum of TI start->end from the DB (includes deferred time)
    cpu_s: dict[str, float] = field(default_factory=dict)  # role -> CPU seconds during the run
    rss_peak_mb: dict[str, float] = field(default_factory=dict)  # role -> peak RSS (process tree sum)
    rss_proc_peak_mb: dict[str, float] = field(default_factory=dict)  # role -> peak RSS of its largest process
    api_requests: int = 0  # emulator API requests (not file downloads)
    api_requests_per_render: float = float("nan")
    file_requests_per_render: float = float("nan")
    requests: dict[str, int] = field(default_factory=dict)  # emulator request counts by "METHOD route"
    latency_p50_s: float = float("nan")  # emulator completion -> MP4 written, per render
    latency_p99_s: float = float("nan")
    latency_max_s: float = float("nan")
    latency_samples: int = 0
    load_before: float = 0.0
    load_after: float = 0.0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bench_env(max_n: int, poll: float, parallelism: int) -> dict[str, str]:
    """Limits raised so N mapped tasks can all be in flight; Airflow's default heartbeats (the tier shortens them
    to catch failovers quickly, which a loaded benchmark machine would trip)."""
    room = str(max(1024, 4 * max_n))
    return {
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": room,
        "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": room,
        "AIRFLOW__CORE__MAX_MAP_LENGTH": room,
        "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": "512",
        "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, 2 * max_n)),
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "5",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "300",
        "MAGICVIDEO_BENCH_POLL": f"{poll:g}",
        # This checkout's provider and DAG helpers, whatever is installed in the venv.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


# ------------------------------------------------------------------------------------------ after a run
def _deliveries(value: Any) -> list[dict[str, Any]]:
    """Every delivery summary (``uri``, ``sha256``, ``size``, ``generation_id``) inside an XCom value, whatever its
    shape: one dict per task, a list/dict of them, or a batch task's summary (read from its manifest)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, dict):
        if {"uri", "sha256", "generation_id"} <= value.keys():
            return [value]
        if isinstance(value.get("manifest_uri"), str):  # a batch task returns a summary; its rows are here
            manifest = json.loads(Path(value["manifest_uri"].removeprefix("file://")).read_text())
            return [row for row in manifest["rows"] if row.get("status") == "delivered"]
        value = list(value.values())
    if isinstance(value, list):
        return [d for item in value for d in _deliveries(item)]
    return []


def _epoch(ts: Any) -> float:
    return ts.timestamp() if ts is not None else float("nan")


def verify(path: Path, record: dict[str, Any] | None) -> bool:
    """The MP4 is there, with the size and sha256 its task reported, and an ISO-BMFF ``ftyp`` box first."""
    if record is None or not path.is_file():
        return False
    data = path.read_bytes()
    return (len(data) > 8 and len(data) == int(record.get("size") or -1) and data[4:8] == b"ftyp"
            and hashlib.sha256(data).hexdigest() == record.get("sha256"))


def delivery_seconds(dep: Deployment, dag_id: str, run_id: str) -> list[float]:
    base = dep.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    found = []
    for log_file in base.glob("**/attempt=*.log"):
        found += [float(m.group(3)) for m in DELIVERED.finditer(log_file.read_text(errors="replace"))]
    return found


def collect(result: CampaignResult, dep: Deployment, emulator: EmulatorProcess, dag_id: str, run_id: str,
            out: Path, sampler: Sampler, scheduler_log: Path) -> None:
    n = result.n
    stats = emulator.stats()
    result.renders_created, result.total_posts = stats["jobs_created"], stats["total_posts"]
    result.requests = {**stats["requests"], **{f"file {k}": v for k, v in stats["file_requests"].items()}}
    result.api_requests = sum(stats["requests"].values())
    result.api_requests_per_render = result.api_requests / n
    result.file_requests_per_render = sum(stats["file_requests"].values()) / n

    ((state, start, end),) = dep.sql("SELECT state, start_date, end_date FROM dag_run WHERE dag_id = %s AND "
                                     "run_id = %s", dag_id, run_id)
    result.run_state, run_start = state, _epoch(start)
    result.run_s = _epoch(end) - run_start
    tis = dep.sql("SELECT task_id, map_index, state, try_number, start_date, end_date, id FROM task_instance "
                  "WHERE dag_id = %s AND run_id = %s", dag_id, run_id)
    result.task_instances, result.ti_per_render = len(tis), len(tis) / n
    result.retried_tis = sum(1 for t in tis if (t[3] or 0) > 1)
    result.ti_span_s_per_render = sum(_epoch(t[5]) - _epoch(t[4]) for t in tis if t[4] and t[5]) / n
    not_ok = sorted({(t[0], t[2]) for t in tis if t[2] != "success"})
    if not_ok:
        result.problems.append(f"task instances not successful: {not_ok[:6]}")
    if result.retried_tis:
        result.problems.append(f"{result.retried_tis} task instance(s) retried")

    records: dict[str, dict[str, Any]] = {}
    for (value,) in dep.sql("SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND key = 'return_value'",
                            dag_id, run_id):
        for record in _deliveries(value):
            records[Path(str(record["uri"])).name] = record
    completed_at = stats["completed_at"]
    mtimes, latencies = [], []
    result.videos_expected = n
    for i in range(n):
        file = out / f"row-{i:04d}.mp4"
        found = records.get(file.name)
        if verify(file, found):
            result.videos_verified += 1
        if file.is_file():
            mtimes.append(file.stat().st_mtime)
            if found is not None and found["generation_id"] in completed_at:
                latencies.append(file.stat().st_mtime - completed_at[found["generation_id"]])
    if mtimes:
        result.wall_s = max(mtimes) - run_start
    result.latency_p50_s, result.latency_p99_s = percentile(latencies, 50), percentile(latencies, 99)
    result.latency_max_s = max(latencies) if latencies else float("nan")
    result.latency_samples = len(latencies)

    seconds = delivery_seconds(dep, dag_id, run_id)
    if seconds:
        result.delivery_s = statistics.median(seconds)
        result.ideal_s = result.render_s + result.poll_s + result.delivery_s
        result.ratio = result.wall_s / result.ideal_s
    else:
        result.problems.append("no 'Delivered generation' line in the task logs: delivery_s (and the ideal) unknown")

    result.cpu_s, result.rss_peak_mb = sampler.cpu(), sampler.rss_peak()
    result.rss_proc_peak_mb = sampler.rss_proc_peak()
    # psutil sees every task process (each lives >> one sample interval); the supervisors' own "Workload
    # finished" lines share the scheduler's log with every worker and a few go missing, so they only cross-check.
    result.worker_slot_s, result.task_processes = round(sampler.slot_seconds(), 2), len(sampler.task_procs)
    result.worker_slot_s_per_render = result.worker_slot_s / n
    ours = {str(t[6]) for t in tis}
    durations = [float(m.group(1)) for m in WORKLOAD.finditer(scheduler_log.read_text(errors="replace"))
                 if m.group(2) in ours]
    result.worker_slot_s_logged, result.workloads_logged = round(sum(durations), 2), len(durations)
    for what, got in (("renders created", result.renders_created), ("job-creating POSTs", result.total_posts),
                      ("videos verified", result.videos_verified)):
        if got != n:
            result.problems.append(f"{what}: {got}, not {n}")
    if result.run_state != "success" or result.renders_created != n or result.videos_verified != n:
        result.status = "failed"


# ------------------------------------------------------------------------------------------ one run
def run_one(dep: Deployment, emulator: EmulatorProcess, roots: dict[str, int], path: CampaignPath, n: int, *,
            render_s: float, poll_s: float, parallelism: int, timeout: float) -> CampaignResult:
    result = CampaignResult(path=path.name, n=n, render_s=render_s, poll_s=poll_s, parallelism=parallelism)
    emulator.reset()  # counters, jobs and completion times of this run only
    out = dep.out / f"{path.name}-n{n}"
    out.mkdir(parents=True, exist_ok=True)
    result.load_before = os.getloadavg()[0]
    run_id = f"bench__{path.name}__{n}__{random_text(6)}"
    with Sampler(roots) as sampler:
        dep.trigger(path.dag_id, {"n": n, "destination": str(out)}, run_id=run_id)
        deadline, state = time.monotonic() + timeout, "queued"
        while time.monotonic() < deadline:
            ((state,),) = dep.sql("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", path.dag_id, run_id)
            if state in {"success", "failed"}:
                break
            time.sleep(1)
        else:
            result.problems.append(f"run not finished after {timeout:.0f}s (state {state}); marked failed")
            dep.rest("PATCH", f"/dags/{path.dag_id}/dagRuns/{run_id}", json={"state": "failed"})
    result.load_after = os.getloadavg()[0]
    time.sleep(1)  # the deliver tasks' log files are complete once their processes have exited
    scheduler_log = next(p.log for p in dep.procs if p.name == SCHEDULER)
    collect(result, dep, emulator, path.dag_id, run_id, out, sampler, scheduler_log)
    return result


def warm_up(dep: Deployment, paths: list[CampaignPath], timeout: float) -> None:
    """One small run of every path at once, not measured: the first run in a fresh deployment also pays for
    starting the trigger runner, the LocalExecutor's workers and first imports, which would bias the first path."""
    runs = {}
    for path in paths:
        runs[path.dag_id] = dep.trigger(path.dag_id, {"n": 2, "destination": str(dep.out / f"warmup-{path.name}")},
                                        run_id=f"warmup__{path.name}__{random_text(6)}")
    deadline = time.monotonic() + timeout
    while runs and time.monotonic() < deadline:
        for dag_id, run_id in list(runs.items()):
            ((state,),) = dep.sql("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id)
            if state in {"success", "failed"}:
                runs.pop(dag_id)
                if state == "failed":
                    log(f"warm-up run of {dag_id} failed (not measured; the measured runs will tell)")
        time.sleep(2)
    if runs:
        log(f"warm-up runs still going after {timeout:.0f}s: {sorted(runs)}; measuring anyway")


def skipped(path: CampaignPath, n: int, reason: str, **params: Any) -> CampaignResult:
    return CampaignResult(path=path.name, n=n, status="skipped", problems=[reason], **params)


# ------------------------------------------------------------------------------------------ the deployment
def run_campaign(paths: list[CampaignPath], sizes: list[int], *, render_s: float, poll_s: float,
                 parallelism: int, timeout: float | None, keep_home: bool = False,
                 settle_s: float = 10.0, warmup: bool = True,
                 on_result: Callable[[list[CampaignResult]], None] | None = None) -> list[CampaignResult]:
    """Deployment up, every (N, path) measured in turn, everything torn down after. ``on_result`` sees the
    results so far after each (N, path), so a run cut short still leaves what it measured."""

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    params: dict[str, Any] = {"render_s": render_s, "poll_s": poll_s, "parallelism": parallelism}
    runnable, results = [], []
    for path in paths:
        reason = path.unavailable()
        if reason:
            log(f"skipping path {path.name}: {reason}")
            results += [skipped(path, n, f"skipped: {reason}", **params) for n in sizes]
        else:
            runnable.append(path)
    if not runnable:
        return results
    previous = signal.signal(signal.SIGTERM, on_term)
    user, database = pg_user(), f"magicvideo_bench_campaign_{random_text(8)}"
    api_key = "sk-bench-" + random_text(24)  # only the emulator and the connection see it; never written out
    scratch = Path(tempfile.mkdtemp(prefix="magicvideo-campaign-"))
    emulator = EmulatorProcess(render_seconds=render_s, render="fast", keys=[api_key], log_level="warning",
                               log_path=scratch / "emulator.log")
    dep: Deployment | None = None
    t0 = time.monotonic()
    try:
        emulator.start()
        pg_admin(f"CREATE DATABASE {database}", user)
        dep = Deployment(executor="LocalExecutor", database=database, pg_user=user,
                         conns={"magicvideo_default": emulator.base_url}, api_key=api_key, dags_folder=DAGS,
                         extra_env=bench_env(max(sizes), poll_s, parallelism))
        log(f"migrating {database}")
        dep.airflow("db", "migrate", timeout=900)
        dep.start(triggerers=1, health_timeout=300)
        for path in runnable:
            dep.wait_dag(path.dag_id, timeout=300)
        assert emulator.process is not None
        roots = {p.name.split("-")[0] if p.name.startswith("triggerer") else p.name: p.pid for p in dep.procs}
        roots["emulator"] = emulator.process.pid
        assert SCHEDULER in roots
        log(f"deployment up after {time.monotonic() - t0:.0f}s (parallelism {parallelism}, render {render_s:g}s, "
            f"poll {poll_s:g}s)")
        if warmup:
            warm_up(dep, runnable, timeout=max(600.0, 5 * render_s))
            log(f"warmed up after {time.monotonic() - t0:.0f}s")
        for n in sizes:
            for path in runnable:
                time.sleep(settle_s)  # the previous run's processes exit and the scheduler goes idle
                log(f"{path.name} N={n} ...")
                run_timeout = timeout or max(1800.0, render_s + 6.0 * n)
                result = run_one(dep, emulator, roots, path, n, timeout=run_timeout, **params)
                log(f"{path.name} N={n}: {result.status}, wall {result.wall_s:.1f}s (ideal {result.ideal_s:.1f}s), "
                    f"{result.renders_created} renders, {result.videos_verified}/{n} videos verified"
                    + (f"; problems: {result.problems}" if result.problems else ""))
                results.append(result)
                if on_result is not None:
                    try:
                        on_result(list(results))
                    except Exception as error:  # a checkpoint that cannot be written must not end the run
                        log(f"could not write the results so far: {error!r}")
    finally:
        log(f"tearing down after {time.monotonic() - t0:.0f}s")
        if dep is not None:
            dep.tear_down(keep_home=keep_home, log=log)
        else:
            drop_database(database, user)
        emulator.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
    return results
