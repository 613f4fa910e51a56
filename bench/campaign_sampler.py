"""CPU, peak RSS and task-process lifetimes of a deployment's processes, by role, while a campaign runs.

A thread samples every ``interval`` seconds (psutil). A role's CPU is the sum over its live processes of
user+system **plus their ``children_*`` times**: a process that exits and is reaped by its parent moves its CPU
into the parent's ``children_*``, so short-lived processes (task runners, DAG-file parsers) are counted in full
and nothing is counted twice. Roles:

* ``scheduler``: the scheduler process alone (its LocalExecutor workers are the ``worker`` role);
* ``worker``: every direct child of the scheduler (the LocalExecutor workers, i.e. the task supervisors) with
  their task-runner children. Their lifetimes (``create_time`` to last seen alive) are the worker slot-seconds:
  a deferred task has no process, so deferral is excluded by construction;
* ``dag-processor``, ``triggerer``, ``api-server``, ``emulator``: the whole process tree.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import psutil

WORKER = "worker"
SCHEDULER = "scheduler"


def _cpu(proc: psutil.Process, children: bool = True) -> float:
    t = proc.cpu_times()
    return t.user + t.system + ((t.children_user + t.children_system) if children else 0.0)


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


@dataclass
class RoleUsage:
    cpu_start: float | None = None
    cpu_last: float = 0.0
    rss_peak_mb: float = 0.0  # the role's process tree, summed
    rss_proc_peak_mb: float = 0.0  # its largest single process

    @property
    def cpu_s(self) -> float:
        return self.cpu_last - (self.cpu_start or 0.0)


@dataclass
class Sampler:
    """``roots``: role -> root pid (``scheduler`` yields both the scheduler and the worker role)."""

    roots: dict[str, int]
    interval: float = 0.25
    usage: dict[str, RoleUsage] = field(default_factory=dict)
    # task-runner pid -> [create_time, last seen alive] (epoch seconds)
    task_procs: dict[int, list[float]] = field(default_factory=dict)
    samples: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="campaign-sampler", daemon=True)
        self._known_before: set[int] = set()

    # -- one sample ---------------------------------------------------------------------------------
    def _measure(self) -> dict[str, tuple[float, float]]:
        """role -> (cpu seconds, rss MB) right now; records task-runner processes as it goes."""
        out: dict[str, tuple[float, float]] = {}
        now = time.time()
        for role, pid in self.roots.items():
            cpu = rss = 0.0
            with contextlib.suppress(psutil.Error):
                if role == SCHEDULER:
                    root = psutil.Process(pid)
                    cpu, rss = _cpu(root), root.memory_info().rss
                    self._big(role, root)
                    w_cpu = w_rss = 0.0
                    for worker in root.children():
                        with contextlib.suppress(psutil.Error):
                            runners = {p.pid for p in worker.children()}  # a task runner's own children: not slots
                            for proc in [worker, *worker.children(recursive=True)]:
                                with contextlib.suppress(psutil.Error):
                                    w_cpu += _cpu(proc)
                                    w_rss += proc.memory_info().rss
                                    self._big(WORKER, proc)
                                    if proc.pid in runners and proc.pid not in self._known_before:
                                        seen = self.task_procs.setdefault(proc.pid, [proc.create_time(), now])
                                        seen[1] = now
                    out[WORKER] = (w_cpu, w_rss / 2**20)
                else:
                    for proc in _tree(pid):
                        with contextlib.suppress(psutil.Error):
                            cpu += _cpu(proc)
                            rss += proc.memory_info().rss
                            self._big(role, proc)
            out[role] = (cpu, rss / 2**20)
        return out

    def _big(self, role: str, proc: psutil.Process) -> None:
        """The largest single process of the role (a tree's RSS sum counts pages shared after fork repeatedly)."""
        usage = self.usage.setdefault(role, RoleUsage())
        usage.rss_proc_peak_mb = max(usage.rss_proc_peak_mb, proc.memory_info().rss / 2**20)

    def sample(self) -> None:
        for role, (cpu, rss) in self._measure().items():
            usage = self.usage.setdefault(role, RoleUsage())
            if usage.cpu_start is None:
                usage.cpu_start = cpu
            usage.cpu_last = cpu
            usage.rss_peak_mb = max(usage.rss_peak_mb, rss)
        self.samples += 1

    # -- thread -------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Sampler:
        # Task processes alive before the run (none, normally) belong to an earlier run: not counted.
        with contextlib.suppress(psutil.Error):
            for worker in psutil.Process(self.roots[SCHEDULER]).children():
                self._known_before |= {p.pid for p in worker.children(recursive=True)}
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    # -- results ------------------------------------------------------------------------------------
    def cpu(self) -> dict[str, float]:
        return {role: round(u.cpu_s, 2) for role, u in self.usage.items()}

    def rss_peak(self) -> dict[str, float]:
        return {role: round(u.rss_peak_mb, 1) for role, u in self.usage.items()}

    def rss_proc_peak(self) -> dict[str, float]:
        return {role: round(u.rss_proc_peak_mb, 1) for role, u in self.usage.items()}

    def slot_seconds(self) -> float:
        """Task-runner lifetimes summed; each is short by up to one ``interval`` (the last sample it was seen)."""
        return sum(last - created for created, last in self.task_procs.values())
