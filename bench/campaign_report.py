"""The campaign benchmark's outputs: the printed/Markdown table, the JSON records and the PNG plot.

The ``.md`` file's analysis is prose written by hand around the generated block (``tooling.results``); only
the block (command, machine, table) is rewritten here.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.campaign_run import CampaignResult
from tooling.results import fmt, write_generated

ROLES = ("scheduler", "worker", "triggerer", "dag-processor", "api-server", "emulator")


def machine() -> str:
    try:
        airflow = version("apache-airflow")
    except PackageNotFoundError:
        airflow = "not installed"
    return (f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
            f"apache-airflow {airflow}")


def _cpu(r: CampaignResult) -> str:
    return " / ".join(fmt(r.cpu_s.get(role), 1) for role in ROLES)


def _rss(r: CampaignResult) -> str:
    return " / ".join(fmt(r.rss_proc_peak_mb.get(role), 0) for role in ROLES)


def markdown_table(results: list[CampaignResult]) -> str:
    lines = [
        "| path | N | status | wall s | ideal s | ratio | renders created | MP4s verified | TIs/render | "
        "slot s/render | API req/render (+files) | p50 / p99 latency s | CPU s sched / worker / trig / dagproc / "
        "api / emu | peak RSS MB, largest process (same order) | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---|",
    ]
    for r in results:
        if r.status == "skipped":
            lines.append(f"| {r.path} | {r.n:,} | skipped | | | | | | | | | | | | |")
            continue
        lines.append(
            f"| {r.path} | {r.n:,} | {r.status} | {fmt(r.wall_s, 1)} | {fmt(r.ideal_s, 1)} | {fmt(r.ratio, 2)} "
            f"| {r.renders_created:,} | {r.videos_verified:,}/{r.n:,} | {fmt(r.ti_per_render, 2)} "
            f"| {fmt(r.worker_slot_s_per_render, 2)} | {fmt(r.api_requests_per_render, 1)} "
            f"(+{fmt(r.file_requests_per_render, 1)}) | {fmt(r.latency_p50_s, 1)} / {fmt(r.latency_p99_s, 1)} "
            f"| {_cpu(r)} | {_rss(r)} | {r.load_before:.1f} → {r.load_after:.1f} |")
    notes = [f"- {r.path} N={r.n}: {'; '.join(r.problems)}" for r in results if r.problems]
    return "\n".join(lines) + ("\n\nProblems and skips:\n" + "\n".join(notes) if notes else "")


def write_json(results: list[CampaignResult], path: Path, meta: dict[str, Any]) -> None:
    def clean(value: Any) -> Any:  # NaN is not JSON: null
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    path.write_text(json.dumps({"meta": meta, "results": [clean(r.as_dict()) for r in results]}, indent=1) + "\n")


def write_plot(results: list[CampaignResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ran = [r for r in results if r.status != "skipped" and not math.isnan(r.wall_s)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in dict.fromkeys(r.path for r in ran):
        mine = sorted((r for r in ran if r.path == name), key=lambda r: r.n)
        ns = [r.n for r in mine]
        axes[0].plot(ns, [r.wall_s for r in mine], marker="o", label=name)
        axes[1].plot(ns, [r.ratio for r in mine], marker="o", label=name)
    ideal = {n: statistics.median(r.ideal_s for r in ran if r.n == n and not math.isnan(r.ideal_s))
             for n in sorted({r.n for r in ran if not math.isnan(r.ideal_s)})}
    if ideal:  # the paths' ideals differ only by their measured delivery time: one line, their median
        axes[0].plot(list(ideal), list(ideal.values()), ls=":", marker="_", color="grey", label="ideal (median)")
    axes[1].axhline(1.0, ls=":", color="grey")
    for ax, title in zip(axes, ("wall s: DAG run start → last MP4", "wall / ideal"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("renders (N)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Campaign benchmark ({machine()})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(results: list[CampaignResult], out: Path, stem: str, *, command: str, settings: str,
              elapsed: float) -> list[Path]:
    """``<stem>.md`` (generated block), ``<stem>.json`` and ``<stem>.png`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = (f"Command: `{command}` ({settings}; {when}; {machine()}; whole command {elapsed:.0f} s, "
              f"1-minute load average before → after each run in the last column).\n\n")
    md, js, png = out / f"{stem}.md", out / f"{stem}.json", out / f"{stem}.png"
    write_generated(md, header + markdown_table(results), title="Campaign benchmark: real deployment, end to end",
                    prose=f"bench/results/{stem}.md, around this block")
    write_json(results, js, {"command": command, "settings": settings, "when": when, "machine": machine(),
                             "elapsed_s": round(elapsed), "cpu_roles": list(ROLES)})
    write_plot(results, png)
    return [md, js, png]
