"""A real Airflow deployment: PostgreSQL database, api-server, scheduler, dag-processor, triggerers (and a
Celery worker), each an OS process started and stopped here.

Nothing here is a test. ``tests/integration`` (the deployment tier) drives it through the REST API v2 like CI
would; ``bench/triggerer_mode.py`` measures triggers in it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import requests

from tooling.net import free_port, wait_for

BIN = Path(sys.executable).parent
PG = {"host": os.environ.get("MAGICVIDEO_IT_PGHOST", "127.0.0.1"),
      "port": int(os.environ.get("MAGICVIDEO_IT_PGPORT", "5432"))}
REDIS = os.environ.get("MAGICVIDEO_IT_REDIS", "redis://127.0.0.1:6379")
TERMINAL = {"success", "failed"}


def random_text(n: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


# --------------------------------------------------------------------------- PostgreSQL
def pg_user() -> str:
    """``postgres`` or ``root``, whichever the trust-auth server accepts."""
    for user in (os.environ.get("MAGICVIDEO_IT_PGUSER"), "postgres", "root"):
        if not user:
            continue
        try:
            psycopg2.connect(dbname="postgres", user=user, connect_timeout=5, **PG).close()
            return user
        except psycopg2.OperationalError:
            continue
    raise RuntimeError(f"PostgreSQL at {PG['host']}:{PG['port']} accepts neither postgres nor root (trust auth)")


def pg_admin(sql: str, user: str) -> None:
    conn = psycopg2.connect(dbname="postgres", user=user, connect_timeout=10, **PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def drop_database(name: str, user: str) -> None:
    with contextlib.suppress(Exception):
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", user)


# --------------------------------------------------------------------------- processes
@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL the process and everything in its process group (its own subprocesses)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)

    def stop(self, grace: float = 15) -> None:
        if self.popen.poll() is not None:
            with contextlib.suppress(ProcessLookupError):  # leftover children of a finished leader
                os.killpg(self.popen.pid, signal.SIGKILL)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)


@dataclass
class Deployment:
    """One Airflow deployment (``executor`` = ``LocalExecutor`` or ``CeleryExecutor``)."""

    executor: str
    database: str
    pg_user: str
    conns: dict[str, str]  # conn_id -> emulator base URL (a ``magicvideo`` connection with ``api_key``)
    api_key: str
    dags_folder: Path | None = None  # None: Airflow's default, $AIRFLOW_HOME/dags
    extra_conns: dict[str, str] = field(default_factory=dict)  # conn_id -> connection JSON, added by start()
    extra_env: dict[str, str] = field(default_factory=dict)  # applied last: overrides the defaults below
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="magicvideo-it-home-")))
    procs: list[Proc] = field(default_factory=list)
    triggerers: dict[int, Proc] = field(default_factory=dict)  # triggerer job id -> process
    token: str = ""
    trigger_snapshots: list[str] = field(default_factory=list)  # decrypted trigger kwargs seen while pending
    out: Path = field(init=False)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.logs = self.home / "process-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.out = self.home / "videos"
        self.out.mkdir()
        self.fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self.password = random_text(20)
        (self.home / "passwords.json").write_text(json.dumps({"ci": self.password}))
        self.queue = f"it_{random_text(8)}"
        self.redis_db = secrets.randbelow(14) + 1
        self.session = requests.Session()

    # -- environment --------------------------------------------------------------------------------
    @property
    def sql_url(self) -> str:
        return f"postgresql+psycopg2://{self.pg_user}@{PG['host']}:{PG['port']}/{self.database}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTEST", "COV_"))}
        env.update({
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_url,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ci:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.api,
            "AIRFLOW__API__SECRET_KEY": self.fernet_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.fernet_key,
            # Recommended by Airflow, and required on 3.0: without it, 3.0.6 with current PyJWT fails every
            # POST /auth/token ("Issuer (iss) must be a string").
            "AIRFLOW__API_AUTH__JWT_ISSUER": "magicvideo-deployment-tier",
            # xcom() reads values with ?deserialize=true, which 3.0 refuses unless this is on (later lines allow it).
            "AIRFLOW__API__ENABLE_XCOM_DESERIALIZE_SUPPORT": "True",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            # Two cores shared by ~6 Airflow processes and 4 task processes: parsing can be slow.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "300",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__CELERY__BROKER_URL": f"{REDIS}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": (
                f"db+postgresql+psycopg2://{self.pg_user}@{PG['host']}:{PG['port']}/{self.database}"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
            "PYTHONUNBUFFERED": "1",
        })
        if self.dags_folder is not None:
            env["AIRFLOW__CORE__DAGS_FOLDER"] = str(self.dags_folder)
        env.update(self.extra_env)
        return env

    def airflow(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command to completion; its output is kept under ``process-logs``."""
        result = subprocess.run([str(BIN / "airflow"), *args], env=self.env(), capture_output=True, text=True,
                                timeout=timeout, cwd=self.home)
        with (self.logs / "cli.log").open("a") as log:
            log.write(f"$ airflow {args[0]} {args[1] if len(args) > 1 else ''} ... -> {result.returncode}\n")
            log.write(result.stdout + result.stderr)
        if check and result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def spawn(self, name: str, *args: str) -> Proc:
        log = self.logs / f"{name}.log"
        with log.open("ab") as handle:
            popen = subprocess.Popen([str(BIN / "airflow"), *args], env=self.env(), stdout=handle,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.home,
                                     start_new_session=True)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self, triggerers: int = 2, health_timeout: float = 180) -> None:
        """Add the connections, start every process and log in to the REST API once it reports healthy."""
        for conn_id, url in self.conns.items():
            self.airflow("connections", "add", conn_id, "--conn-type", "magicvideo", "--conn-host", url,
                         "--conn-password", self.api_key, "--conn-extra", '{"allow_insecure_video_urls": true}')
        for conn_id, conn_json in self.extra_conns.items():
            self.airflow("connections", "add", conn_id, "--conn-json", conn_json)
        self.spawn("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1")
        self.spawn("scheduler", "scheduler")
        self.spawn("dag-processor", "dag-processor")
        if self.executor == "CeleryExecutor":
            self.spawn("celery-worker", "celery", "worker", "--concurrency", "4", "--queues", self.queue,
                       "--skip-serve-logs", "--without-gossip", "--without-mingle")
        for _ in range(triggerers):
            self.start_triggerer()
        wait_for("api-server health", self._healthy, health_timeout)
        self.login()

    def start_triggerer(self) -> int:
        """Start a triggerer and return its job id (so a kill can target the one holding triggers)."""
        known = set(self.live_triggerer_jobs())
        started = sum(p.name.startswith("triggerer") for p in self.procs)
        proc = self.spawn(f"triggerer-{started + 1}", "triggerer", "--skip-serve-logs")

        def new_job() -> int | None:
            if not proc.alive():
                raise RuntimeError(f"triggerer exited; see {proc.log}")
            fresh = set(self.live_triggerer_jobs()) - known
            return fresh.pop() if fresh else None

        job_id = wait_for("triggerer job row", new_job, 180)
        self.triggerers[job_id] = proc
        return job_id

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.session.close()
        if self.executor == "CeleryExecutor":
            with contextlib.suppress(Exception):
                import redis

                redis.Redis.from_url(f"{REDIS}/{self.redis_db}").flushdb()

    def tear_down(self, *, keep_home: bool = False, log: Callable[[str], None] | None = None) -> None:
        """Stop every process, drop the database and remove AIRFLOW_HOME, unless ``keep_home`` (or
        ``MAGICVIDEO_IT_KEEP_HOME=1``) keeps it for its task logs."""
        with contextlib.suppress(Exception):
            self.stop()
        drop_database(self.database, self.pg_user)
        if keep_home or os.environ.get("MAGICVIDEO_IT_KEEP_HOME") == "1":
            if log is not None:
                log(f"kept {self.home}")
        else:
            shutil.rmtree(self.home, ignore_errors=True)

    def _healthy(self) -> bool:
        for proc in self.procs:
            if not proc.alive() and proc.name in {"api-server", "scheduler", "dag-processor", "celery-worker"}:
                raise RuntimeError(f"{proc.name} exited early; see {proc.log}:\n{proc.log.read_text()[-3000:]}")
        body = requests.get(f"{self.api}/api/v2/monitor/health", timeout=5).json()
        return body["metadatabase"]["status"] == "healthy" and body["scheduler"]["status"] == "healthy" \
            and body["triggerer"]["status"] == "healthy"

    # -- metadata DB (read-only checks the REST API does not expose) ---------------------------------
    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = psycopg2.connect(dbname=self.database, user=self.pg_user, connect_timeout=10, **PG)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def live_triggerer_jobs(self) -> list[int]:
        try:
            rows = self.sql("SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running' "
                            "AND latest_heartbeat > now() - interval '10 seconds'")
        except psycopg2.Error:
            return []
        return [r[0] for r in rows]

    def decrypt(self, token: str | bytes) -> str:
        """A Fernet-encrypted column value in clear text (plain JSON values pass through)."""
        from cryptography.fernet import Fernet

        text = token.decode() if isinstance(token, bytes) else token
        if text.lstrip().startswith(("{", "[")):
            return text
        return Fernet(self.fernet_key.encode()).decrypt(text.encode()).decode()

    def triggers_of_run(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's pending triggers: id, triggerer job id, map index and decrypted kwargs."""
        rows = self.sql(
            "SELECT t.id, t.triggerer_id, ti.map_index, t.kwargs FROM trigger t "
            "JOIN task_instance ti ON ti.trigger_id = t.id WHERE ti.dag_id = %s AND ti.run_id = %s",
            dag_id, run_id)
        return [{"id": r[0], "triggerer_id": r[1], "map_index": r[2], "kwargs": self.decrypt(r[3])} for r in rows]

    # -- REST API v2 -------------------------------------------------------------------------------
    def login(self) -> None:
        response = requests.post(f"{self.api}/auth/token", json={"username": "ci", "password": self.password},
                                 timeout=30)
        response.raise_for_status()
        self.token = response.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.api}/api/v2{path}", timeout=60, **kwargs)
        if response.status_code == 401:  # token expired: log in again, once
            self.login()
            response = self.session.request(method, f"{self.api}/api/v2{path}", timeout=60, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> HTTP {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def wait_dag(self, dag_id: str, timeout: float = 240) -> None:
        wait_for(f"DAG {dag_id} parsed", lambda: self.rest("GET", f"/dags/{dag_id}"), timeout, 2)
        self.rest("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None) -> str:
        run_id = run_id or f"it__{dag_id}__{self.executor[:5].lower()}__{random_text(6)}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        return self.rest("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.rest("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.rest("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 200})[
            "task_instances"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float,
                 on_sample: Callable[[list[dict[str, Any]]], None] | None = None, interval: float = 1.0) -> str:
        """Wait until the run is terminal, calling ``on_sample`` with the TI list at every poll."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if on_sample is not None:
                on_sample(self.task_instances(dag_id, run_id))
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL:
                return state
            time.sleep(interval)
        states = [(t["task_id"], t["map_index"], t["state"]) for t in self.task_instances(dag_id, run_id)]
        raise TimeoutError(f"run {dag_id}/{run_id} not finished after {timeout:.0f}s: {states}")

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1) -> Any:
        return self.rest("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                         params={"map_index": map_index, "deserialize": True})["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        """Every try's log file of one task instance, concatenated (what the UI shows)."""
        base = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            base = base / f"map_index={map_index}"
        return "\n".join(p.read_text(errors="replace") for p in sorted(base.glob("attempt=*.log")))


@contextlib.contextmanager
def deployment(executor: str, conns: dict[str, str], api_key: str, template: str, user: str,
               dags_folder: Path, *, label: str = "", triggerers: int = 2,
               extra_env: dict[str, str] | None = None) -> Iterator[Deployment]:
    """A deployment on a fresh copy of the migrated ``template`` database; everything is torn down after.

    ``label`` keeps the database name apart from other deployments on the same template."""
    name = f"{template.removesuffix('_tpl')}_{label}{executor[:5].lower()}"
    pg_admin(f"CREATE DATABASE {name} TEMPLATE {template}", user)
    dep = Deployment(executor=executor, database=name, pg_user=user, conns=conns, api_key=api_key,
                     dags_folder=dags_folder, extra_env=dict(extra_env or {}))
    try:
        dep.start(triggerers=triggerers)
        yield dep
    finally:
        dep.tear_down()


def migrate_template(user: str) -> str:
    """Create ``magicvideo_it_<random>_tpl`` and run ``airflow db migrate`` on it once."""
    name = f"magicvideo_it_{random_text(8)}_tpl"
    pg_admin(f"CREATE DATABASE {name}", user)
    dep = Deployment(executor="LocalExecutor", database=name, pg_user=user, conns={}, api_key="")
    try:
        dep.airflow("db", "migrate", timeout=600)
    except Exception:
        drop_database(name, user)
        raise
    finally:
        shutil.rmtree(dep.home, ignore_errors=True)
    return name
