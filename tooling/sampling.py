"""CPU, RSS, open fds and sockets of a process or a process tree (psutil), and ``RssPeak`` for this process."""

from __future__ import annotations

import contextlib
import threading
import time

import psutil


def process_cpu(pid: int) -> float:
    """user+system CPU seconds of one process so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_cpu(pid: int) -> dict[int, float]:
    """user+system CPU seconds per process of the tree (a process that ended is simply absent)."""
    out: dict[int, float] = {}
    for proc in tree(pid):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            out[proc.pid] = times.user + times.system
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the tree spent between two ``tree_cpu`` samples (processes started since count in full)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def tree_rss_mb(pid: int) -> float:
    total = 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / 2**20


def tree_fds(pid: int) -> int:
    total = 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.num_fds()
    return total


def established_to(pid: int, port: int) -> int:
    """Sockets of the tree's processes connected to ``port`` right now."""
    count = 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.Error):
            count += sum(1 for c in proc.net_connections("tcp") if c.raddr and c.raddr.port == port)
    return count


def client_ports(port: int) -> set[int]:
    """Client-side ports of every TCP connection to ``port`` the kernel knows right now, TIME_WAIT included
    (``/proc/net/tcp{,6}``: no pid for closed sockets, so this is all clients of that server)."""
    hex_port = f"{port:04X}"
    ports: set[int] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(name) as handle:
            next(handle)
            for line in handle:
                parts = line.split(None, 3)
                local, remote = parts[1], parts[2]
                if remote.endswith(":" + hex_port):
                    ports.add(int(local.rsplit(":", 1)[1], 16))
                elif local.endswith(":" + hex_port) and not remote.endswith(":0000"):
                    ports.add(int(remote.rsplit(":", 1)[1], 16))
    return ports


class RssPeak:
    """Samples this process's RSS in a thread; ``growth`` is the peak above the starting value, in bytes."""

    def __init__(self, interval: float = 0.005) -> None:
        self._proc = psutil.Process()
        self.interval = interval
        self.start = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.start

    @property
    def growth_mb(self) -> float:
        return self.growth / 2**20
