"""Issue #7: the provider in a real Airflow deployment (LocalExecutor, then CeleryExecutor).

Every scenario records a row (renders, job-creating POSTs, outcome, wall time) whether it passes or not,
then asserts. Checks compare counts, states and times measured from outside: the REST API v2, the
metadata DB (trigger assignment), the emulator's counters and the delivered files.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from airflow_provider_magicvideo.hooks.submission import make_client_request_id
from tests.integration.results import record_row
from tooling.deployment import Deployment
from tooling.net import wait_for

if TYPE_CHECKING:
    from tests.integration.conftest import Tier

pytestmark = pytest.mark.deployment

# The version matrix (scripts/compat.py) runs the crash scenarios with a smaller campaign on each Airflow line.
N_CAMPAIGN = int(os.environ.get("MAGICVIDEO_IT_CAMPAIGN", "20"))
N_FAULTS = 3
PARALLELISM = 4


# --------------------------------------------------------------------------- helpers
class Row(dict):
    """A results-table row filled in by a scenario; recorded on exit with PASS or the failure."""


@contextlib.contextmanager
def scenario(dep: Deployment, name: str) -> Iterator[Row]:
    row = Row(renders="-", posts="-", notes="")
    started = time.monotonic()
    try:
        yield row
    except BaseException as exc:
        outcome = f"FAIL: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        record_row(dep.executor, name, row["renders"], row["posts"], outcome, time.monotonic() - started,
                   row["notes"])
        raise
    record_row(dep.executor, name, row["renders"], row["posts"], row.get("outcome", "PASS"),
               time.monotonic() - started, row["notes"])


def crid(dag_id: str, run_id: str, map_index: int = -1, task_id: str = "render") -> str:
    return make_client_request_id("airflow", dag_id, task_id, run_id, map_index)


def posts_for(tier: Tier, emulator: str, dag_id: str, run_id: str, map_indexes: list[int]) -> dict[int, int]:
    """Job-creating POSTs per map index, as counted by the emulator."""
    by_id = tier.emulators[emulator].stats()["posts_by_client_request_id"]
    return {i: by_id.get(crid(dag_id, run_id, i), 0) for i in map_indexes}


def when(ts: str | None) -> float:
    assert ts, "missing timestamp"
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def is_mp4(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[4:8] == b"ftyp"


def by_task(tis: list[dict[str, Any]], task_id: str) -> dict[int, dict[str, Any]]:
    return {t["map_index"]: t for t in tis if t["task_id"] == task_id}


def kill_triggerer_holding(dep: Deployment, triggers: list[dict[str, Any]]) -> tuple[int, int, int]:
    """SIGKILL the live triggerer that holds most of ``triggers``; returns (victim job, survivor job, held)."""
    counts = {job: sum(t["triggerer_id"] == job for t in triggers) for job in dep.triggerers}
    victim = max(counts, key=lambda job: counts[job])
    survivors = [job for job in dep.triggerers if job != victim]
    assert counts[victim] > 0 and survivors, f"trigger assignment {counts}"
    dep.triggerers.pop(victim).kill9()
    return victim, survivors[0], counts[victim]


# --------------------------------------------------------------------------- scenarios
def test_connection_test_via_rest(dep: Deployment, tier: Tier) -> None:
    with scenario(dep, "connection test (POST /api/v2/connections/test)") as row:
        before = tier.emulators["slow"].stats()["total_posts"]
        result = dep.rest("POST", "/connections/test",
                          json={"connection_id": "magicvideo_default", "conn_type": "magicvideo"})
        row["posts"] = tier.emulators["slow"].stats()["total_posts"] - before
        row["notes"] = result["message"].replace("|", "/")[:90]
        assert result["status"] is True, result
        assert row["posts"] == 0  # the test spends no credits


def test_1_campaign_renders_wait_deferred_without_slots(dep: Deployment, tier: Tier) -> None:
    with scenario(dep, f"1. campaign: {N_CAMPAIGN} mapped deferrable renders + deliveries") as row:
        run_id = dep.trigger("it_campaign", {"n": N_CAMPAIGN, "destination": str(dep.out)})
        seen_deferred: set[int] = set()
        peak = {"deferred": 0, "occupying": 0}

        def sample(tis: list[dict[str, Any]]) -> None:
            renders = by_task(tis, "render")
            deferred = {i for i, t in renders.items() if t["state"] == "deferred"}
            seen_deferred.update(deferred)
            peak["deferred"] = max(peak["deferred"], len(deferred))
            # Executor slots are held by running task instances (deferred ones must not hold one).
            peak["occupying"] = max(peak["occupying"], sum(t["state"] == "running" for t in tis))
            if deferred:
                dep.trigger_snapshots.extend(t["kwargs"] for t in dep.triggers_of_run("it_campaign", run_id))

        state = dep.wait_run("it_campaign", run_id, 600, sample)
        tis = dep.task_instances("it_campaign", run_id)
        renders, delivers = by_task(tis, "render"), by_task(tis, "deliver")
        posts = posts_for(tier, "slow", "it_campaign", run_id, list(range(N_CAMPAIGN)))
        files = _delivered(dep, run_id)
        row.update(renders=len(renders), posts=sum(posts.values()),
                   notes=f"max {peak['deferred']} deferred at once, max {peak['occupying']} running "
                         f"(parallelism {PARALLELISM}); {len(seen_deferred)}/{N_CAMPAIGN} seen deferred; "
                         f"{sum(map(is_mp4, files))} MP4s delivered")
        assert state == "success"
        assert sorted(t["state"] for t in renders.values()) == ["success"] * N_CAMPAIGN
        assert sorted(t["state"] for t in delivers.values()) == ["success"] * N_CAMPAIGN
        assert seen_deferred == set(range(N_CAMPAIGN)), f"never seen deferred: {set(range(N_CAMPAIGN)) - seen_deferred}"
        assert peak["deferred"] > PARALLELISM, "more renders waiting at once than slots: only if deferral frees slots"
        assert peak["occupying"] <= PARALLELISM
        assert set(posts.values()) == {1}, f"POSTs per map index: {posts}"
        assert len(files) == N_CAMPAIGN and all(map(is_mp4, files))


def _delivered(dep: Deployment, run_id: str) -> list[Path]:
    """The MP4s the run's deliveries wrote (the DAG's ``plan`` names the folder after the run id)."""
    folder = dep.out / "".join(c if c.isalnum() else "_" for c in run_id)
    return sorted(folder.glob("*.mp4"))


def triggerer_scenario_on_local_only(dep: Deployment) -> None:
    """A triggerer's failover is between triggerers, whatever the executor: the Celery run's campaign already
    resumes deferred tasks on Celery workers, so it skips the kill scenarios (CI's time budget)."""
    if dep.executor == "CeleryExecutor":
        pytest.skip("triggerer failover is executor-independent: LocalExecutor only")


def test_2a_triggerer_killed_while_renders_pending(dep: Deployment, tier: Tier) -> None:
    triggerer_scenario_on_local_only(dep)
    with scenario(dep, f"2a. HA: kill -9 a triggerer with {N_CAMPAIGN} renders pending") as row:
        run_id = dep.trigger("it_campaign", {"n": N_CAMPAIGN, "destination": str(dep.out)})

        def all_pending() -> list[dict[str, Any]] | None:
            triggers = dep.triggers_of_run("it_campaign", run_id)
            assigned = [t for t in triggers if t["triggerer_id"] is not None]
            return triggers if len(assigned) == N_CAMPAIGN else None

        triggers = wait_for(f"all {N_CAMPAIGN} renders deferred and assigned to a triggerer", all_pending, 300, 0.5)
        dep.trigger_snapshots.extend(t["kwargs"] for t in triggers)
        victim, survivor, held = kill_triggerer_holding(dep, triggers)
        killed_at = time.monotonic()
        moved: dict[str, float] = {}

        def reassigned() -> bool:
            now = dep.triggers_of_run("it_campaign", run_id)
            if any(t["triggerer_id"] == victim for t in now):
                return False
            moved["seconds"] = time.monotonic() - killed_at
            moved["pending"] = sum(t["triggerer_id"] == survivor for t in now)
            return True

        wait_for("triggers of the killed triggerer reassigned", reassigned, 120, 0.5)
        state = dep.wait_run("it_campaign", run_id, 600)
        tis = dep.task_instances("it_campaign", run_id)
        renders, delivers = by_task(tis, "render"), by_task(tis, "deliver")
        posts = posts_for(tier, "slow", "it_campaign", run_id, list(range(N_CAMPAIGN)))
        files = _delivered(dep, run_id)
        row.update(renders=len(renders), posts=sum(posts.values()),
                   notes=f"killed triggerer job {victim} holding {held}/{N_CAMPAIGN} triggers "
                         f"(all {N_CAMPAIGN} deferred at the kill); all moved to job {survivor} "
                         f"in {moved.get('seconds', 0):.0f}s; {sum(map(is_mp4, files))} MP4s delivered")
        dep.start_triggerer()  # back to two triggerers for the next scenario
        assert state == "success"
        assert sorted(t["state"] for t in renders.values()) == ["success"] * N_CAMPAIGN
        assert sorted(t["state"] for t in delivers.values()) == ["success"] * N_CAMPAIGN
        assert set(posts.values()) == {1}, f"POSTs per map index: {posts}"
        assert len(files) == N_CAMPAIGN and all(map(is_mp4, files))


def test_2b_deadline_survives_triggerer_failover(dep: Deployment, tier: Tier) -> None:
    triggerer_scenario_on_local_only(dep)
    with scenario(dep, "2b. HA: deadline kept across a triggerer kill (timeout 35s < render)") as row:
        run_id = dep.trigger("it_deadline")

        def assigned() -> dict[str, Any] | None:
            triggers = [t for t in dep.triggers_of_run("it_deadline", run_id) if t["triggerer_id"] is not None]
            return triggers[0] if triggers else None

        trigger = wait_for("deadline trigger assigned", assigned, 180, 0.5)
        dep.trigger_snapshots.append(trigger["kwargs"])
        deadline = _end_time(trigger["kwargs"])
        holder = trigger["triggerer_id"]
        wait_for("trigger running in its triggerer",
                 lambda: "Waiting for generation" in _trigger_log(dep, run_id, holder), 120, 0.5)
        time.sleep(2)
        victim, survivor, _ = kill_triggerer_holding(dep, [trigger])
        assert victim == holder
        killed_at = time.time()

        def moved() -> dict[str, Any] | None:
            now = dep.triggers_of_run("it_deadline", run_id)
            return now[0] if now and now[0]["triggerer_id"] == survivor else None

        after = wait_for("deadline trigger reassigned", moved, 120, 0.5)
        reassigned_at = time.time()
        state = dep.wait_run("it_deadline", run_id, 300)
        ti = by_task(dep.task_instances("it_deadline", run_id), "render")[-1]
        ended = when(ti["end_date"])
        posts = posts_for(tier, "slow", "it_deadline", run_id, [-1])
        log = dep.task_log("it_deadline", run_id, "render")
        fired = _trigger_fired_at(dep, run_id, survivor)
        row.update(renders=1, posts=posts[-1],
                   notes=f"killed {killed_at - deadline:+.0f}s from the deadline, trigger moved after "
                         f"{reassigned_at - killed_at:.0f}s; timeout event fired {fired - deadline:+.1f}s and task "
                         f"failed {ended - deadline:+.1f}s from the original deadline (a deadline reset at "
                         f"failover would fire at {reassigned_at + 35 - deadline:+.0f}s)")
        dep.start_triggerer()
        assert state == "failed" and ti["state"] == "failed"
        assert _end_time(after["kwargs"]) == deadline, "end_time changed on failover"
        assert "GenerationTimeoutError" in log and "did not complete" in log, log[-2000:]
        assert killed_at < deadline - 5 and reassigned_at < deadline, "the kill must happen well before the deadline"
        assert -1 <= fired - deadline <= 6, f"timeout fired {fired - deadline:+.1f}s from the original deadline"
        assert 0 <= ended - deadline <= 90, f"task failed {ended - deadline:+.1f}s from the original deadline"
        assert posts[-1] == 1


def _trigger_log(dep: Deployment, run_id: str, triggerer_id: int) -> str:
    """What triggerer job ``triggerer_id`` logged for the it_deadline task (``attempt=N.log.trigger.<job>.log``)."""
    base = dep.home / "logs" / "dag_id=it_deadline" / f"run_id={run_id}" / "task_id=render"
    return "\n".join(p.read_text(errors="replace") for p in sorted(base.glob(f"attempt=*.log.trigger.{triggerer_id}.log")))


def _trigger_fired_at(dep: Deployment, run_id: str, triggerer_id: int) -> float:
    """When the trigger yielded its event, from the log triggerer job ``triggerer_id`` wrote for the task."""
    import json

    for line in _trigger_log(dep, run_id, triggerer_id).splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("event") == "Trigger fired event":
                return when(entry["timestamp"])
    raise AssertionError(f"no 'Trigger fired event' in triggerer {triggerer_id}'s log of {run_id}")


def _end_time(kwargs_text: str) -> float:
    import json

    kwargs = json.loads(kwargs_text)
    value = kwargs.get("end_time")
    if isinstance(value, dict):  # Airflow's serialized form {"__type": ..., "__var": ...}
        value = value.get("__var")
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def test_3_worker_crash_reconnects_to_same_render(dep: Deployment, tier: Tier) -> None:
    with scenario(dep, "3. worker crash during a blocking wait (SIGKILL task process)") as row:
        run_id = dep.trigger("it_sync_wait")
        request_id = crid("it_sync_wait", run_id)
        emu = tier.emulators["slow"]

        def submitted() -> dict[str, Any] | None:
            ti = by_task(dep.task_instances("it_sync_wait", run_id), "render").get(-1)
            if not ti or ti["state"] != "running" or emu.stats()["posts_by_client_request_id"].get(request_id) != 1:
                return None
            return ti

        ti = wait_for("blocking render submitted and waiting", submitted, 240, 0.5)
        generation_id = wait_for("generation id in XCom",
                                 lambda: dep.xcom("it_sync_wait", run_id, "render", "generation_id"), 60, 1)
        time.sleep(3)  # well inside the wait loop
        victims = [p for p in psutil.process_iter(["cmdline"]) if ti["id"] in " ".join(p.info["cmdline"] or [])]
        assert victims, f"no process mentions task instance {ti['id']}"
        for proc in victims:
            proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        state = dep.wait_run("it_sync_wait", run_id, 400)
        final = by_task(dep.task_instances("it_sync_wait", run_id), "render")[-1]
        stats = emu.stats()
        posts = stats["posts_by_client_request_id"].get(request_id, 0)
        attempts = stats["post_attempts_by_client_request_id"].get(request_id, 0)
        result = dep.xcom("it_sync_wait", run_id, "render", "return_value") if state == "success" else {}
        row.update(renders=1, posts=posts,
                   notes=f"killed pid(s) {[p.pid for p in victims]} (`airflow worker -- <ti id>`); "
                         f"try {final['try_number']} ended {when(final['end_date']) - killed_at:.0f}s later; "
                         f"same generation: {result.get('generation_id') == generation_id}; POST attempts {attempts}")
        assert state == "success" and final["state"] == "success"
        assert final["try_number"] >= 2, "the killed try must have been retried"
        assert result["generation_id"] == generation_id
        assert posts == 1 and attempts == 1


FAULTS: dict[str, tuple[set[str], str | None, int]] = {
    # profile: (allowed run states, the documented message every failed render/deliver log carries, hold s)
    "rate_limit": ({"success"}, None, 0),
    "server_errors": ({"success", "failed"}, "may have been created", 0),
    # The answer is lost after the render was created: the usage log names it, the task reconnects (#17).
    "drop_after_post": ({"success"}, None, 0),
    "drop_after_post,late_logs": ({"success"}, None, 0),  # ... and the log rows arrive 30-60 s late
    "malformed_json": ({"success"}, None, 0),
    "unknown_status": ({"success"}, None, 0),
    "short_expiry": ({"success"}, None, 8),
    "no_credits": ({"failed"}, "top up", 0),
    "render_error": ({"failed"}, "RenderError", 0),
}


# How a fault is handled is decided in the hook and the operators, whatever the executor: CeleryExecutor repeats
# only the faults whose handling spans task retries (a retry on another worker process), to keep CI in budget.
CELERY_FAULTS = {"server_errors", "drop_after_post"}


@pytest.mark.parametrize("profile", list(FAULTS))
def test_4_fault_matrix(dep: Deployment, tier: Tier, profile: str) -> None:
    if dep.executor == "CeleryExecutor" and profile not in CELERY_FAULTS:
        pytest.skip(f"fault {profile!r} runs on LocalExecutor only (executor-independent handling)")
    allowed, message, hold = FAULTS[profile]
    emu = tier.emulators["fast"]
    with scenario(dep, f"4. fault `{profile}`") as row:
        emu.set_faults(profile)
        try:
            run_id = dep.trigger("it_faults", {"n": N_FAULTS, "destination": str(dep.out), "hold_seconds": hold})
            state = dep.wait_run("it_faults", run_id, 420)
        finally:
            emu.set_faults()
        tis = dep.task_instances("it_faults", run_id)
        renders, delivers = by_task(tis, "render"), by_task(tis, "deliver")
        posts = posts_for(tier, "fast", "it_faults", run_id, list(range(N_FAULTS)))
        files = _delivered(dep, run_id)
        failed = [(task, i) for task, tis_ in (("render", renders), ("deliver", delivers))
                  for i, t in tis_.items() if t["state"] == "failed"]
        unexplained = [f"{task}[{i}]" for task, i in failed
                       if not message or message not in dep.task_log("it_faults", run_id, task, i)]
        explained = {f"{task}[{i}]" for task, i in failed} - set(unexplained)
        # A render is lost when the API created it but no task recorded it: neither a successful render task
        # (its generation id and URL are in XCom, delivered or not) nor a failure that names the error.
        lost = [i for i, n in posts.items()
                if n and renders.get(i, {}).get("state") != "success" and f"render[{i}]" not in explained]
        row.update(renders=N_FAULTS, posts=sum(posts.values()),
                   outcome=f"PASS ({state}: {sum(map(is_mp4, files))}/{N_FAULTS} MP4s"
                           f"{'; ' + message if failed else ''})",
                   notes=f"render states {_states(renders)}, deliver states {_states(delivers)}; "
                         f"lost {len(lost)}, duplicate POSTs {sum(max(0, n - 1) for n in posts.values())}")
        assert state in allowed, f"run {state}, expected {allowed}"
        assert all(n <= 1 for n in posts.values()), f"duplicate job-creating POSTs: {posts}"
        assert not unexplained, f"failed without the documented error ({message!r}): {unexplained}"
        assert not lost, f"renders created but neither delivered nor reported: {lost}"
        if state == "success":
            assert len(files) == N_FAULTS and all(map(is_mp4, files))
        if profile.startswith("drop_after_post"):  # one render each, found through the usage log
            assert set(posts.values()) == {1}
            for i in range(N_FAULTS):
                assert "The usage log shows generation" in dep.task_log("it_faults", run_id, "render", i)
        if profile == "no_credits":
            assert sum(posts.values()) == 0
        if profile == "render_error":
            assert any(t["state"] == "failed" for t in renders.values())


def _states(tis: dict[int, dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for t in tis.values():
        counts[str(t["state"])] = counts.get(str(t["state"]), 0) + 1
    return "/".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"


def test_5_secret_audit(dep: Deployment, tier: Tier) -> None:
    key = tier.api_key
    needles = {key, base64.b64encode(key.encode()).decode(), base64.urlsafe_b64encode(key.encode()).decode(),
               base64.b64encode(f"Bearer {key}".encode()).decode()}
    with scenario(dep, "5. secret audit: logs, XCom, triggers, rendered fields, serialized DAGs") as row:
        hits: dict[str, int] = {}

        def scan(where: str, text: str) -> None:
            n = sum(text.count(needle) for needle in needles)
            hits[where] = hits.get(where, 0) + n

        files = [p for p in dep.home.rglob("*") if p.is_file() and p.suffix != ".mp4"]
        for path in files:
            where = "task logs" if "logs" in path.relative_to(dep.home).parts[:1] else "process logs"
            scan(where, path.read_text(errors="replace"))
        tables = [r[0] for r in dep.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        rows = 0
        for table in tables:
            for (text,) in dep.sql(f'SELECT t::text FROM "{table}" t'):
                rows += 1
                scan(table if table in {"xcom", "trigger", "rendered_task_instance_fields", "serialized_dag"}
                     else "other tables", text)
        for kwargs in dep.trigger_snapshots:
            scan("trigger kwargs (decrypted)", kwargs)
        # Positive control: the same scan finds the key where it must be (the decrypted connection).
        control = sum(dep.decrypt(pw).count(key) for (pw,) in
                      dep.sql("SELECT password FROM connection WHERE conn_id = 'magicvideo_default'"))
        row["notes"] = (f"{len(files)} files, {len(tables)} tables / {rows} rows, "
                        f"{len(dep.trigger_snapshots)} decrypted trigger kwargs; hits "
                        + ", ".join(f"{k} {v}" for k, v in sorted(hits.items())) + f"; control {control}")
        assert control == 1
        assert len(dep.trigger_snapshots) > 0
        assert {"xcom", "serialized_dag", "rendered_task_instance_fields"} <= set(hits)
        assert sum(hits.values()) == 0, hits
