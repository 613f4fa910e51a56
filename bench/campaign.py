"""Issue #20: a campaign end to end in a real deployment, per path (DAG shape) and size N.

PostgreSQL, ``scheduler`` + LocalExecutor, ``dag-processor``, ONE ``triggerer``, ``api-server`` and the emulator
in its own process with a fixed render time (``render="fast"``: one pre-rendered clip per template). Each path
renders and delivers N MP4s in one DAG run (``bench/dags/campaign``); per (path, N) it records the wall time
from the run's start to the last MP4, the ideal and their ratio, task instances and worker slot-seconds per
render, CPU seconds and peak RSS per process role, emulator requests per render, completion → delivered
latency, renders created (must be N) and the MP4s verified (size, sha256, ``ftyp``).

    python -m bench.campaign                                   # N = 100 500 1000, render 120 s, poll 10 s
    python -m bench.campaign --smoke                           # N = 10, render 20 s, poll 5 s -> campaign-smoke.*
    python -m bench.campaign --paths render_operator --sizes 20 --render-seconds 20 --out /tmp/campaign

Paths: bench/campaign_paths.py (one entry + one DAG file each; a path whose operator is not importable is
skipped with the reason). Writes ``<out>/<stem>.md`` (generated block only; the analysis is prose around it),
``<stem>.json`` and ``<stem>.png``; the stem is ``campaign``, or ``campaign-smoke`` with ``--smoke`` or any
run below the full sizes, so a small run never overwrites the real results.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.campaign_paths import PATHS
from bench.campaign_report import markdown_table, write_all
from bench.campaign_run import CampaignResult, run_campaign

RESULTS = Path(__file__).resolve().parent / "results"
FULL_SIZES = [100, 500, 1000]
DEFAULT_PATHS = ["three_tasks", "two_tasks", "render_operator", "batch_operator"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default=",".join(DEFAULT_PATHS),
                        help=f"comma-separated, from {', '.join(PATHS)} (default: all)")
    parser.add_argument("--sizes", default=",".join(map(str, FULL_SIZES)), help="comma-separated N (renders per run)")
    parser.add_argument("--render-seconds", type=float, default=120.0, help="emulator render time, seconds")
    parser.add_argument("--poll-interval", type=float, default=10.0, help="status poll interval, seconds (all paths)")
    parser.add_argument("--parallelism", type=int, default=16, help="LocalExecutor parallelism (worker slots)")
    parser.add_argument("--run-timeout", type=float, default=None,
                        help="give up on one run after this many seconds (default max(1800, render + 6 N))")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    parser.add_argument("--stem", default=None, help="file name stem (default: campaign, or campaign-smoke for "
                                                     "--smoke and runs below the full sizes)")
    parser.add_argument("--smoke", action="store_true", help="N=10, render 20 s, poll 5 s, the three provider "
                                                             "paths that exist today; writes campaign-smoke.*")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the unmeasured N=2 run of every path before the measured runs")
    parser.add_argument("--keep-home", action="store_true", help="keep AIRFLOW_HOME (task logs) for inspection")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.render_seconds, args.poll_interval = "10", 20.0, 5.0
        args.paths = "three_tasks,two_tasks,render_operator"
    args.paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in args.paths if p not in PATHS]
    if unknown:
        parser.error(f"unknown path(s) {', '.join(unknown)}; known: {', '.join(PATHS)}")
    args.sizes = sorted({int(n) for n in args.sizes.split(",") if n})
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes: at least one N >= 1")
    if args.stem is None:
        full = set(FULL_SIZES) <= set(args.sizes) and args.render_seconds >= 120
        args.stem = "campaign" if full and not args.smoke else "campaign-smoke"
    return args


def main(argv: list[str] | None = None) -> list[CampaignResult]:
    args = parse_args(argv)
    started = time.monotonic()
    order = {p: i for i, p in enumerate(args.paths)}
    command = "python -m bench.campaign " + " ".join(argv if argv is not None else sys.argv[1:])
    settings = (f"render {args.render_seconds:g} s, poll {args.poll_interval:g} s, LocalExecutor parallelism "
                f"{args.parallelism}, one triggerer, {'a warm-up run per path' if args.warmup else 'no warm-up'}")

    def write(results: list[CampaignResult]) -> list[Path]:
        results.sort(key=lambda r: (r.n, order[r.path]))
        return write_all(results, args.out, args.stem, command=command.strip(), settings=settings,
                         elapsed=time.monotonic() - started)

    # Written after every (N, path) too: the full sizes take hours, and an interrupted run keeps what it measured.
    results = run_campaign([PATHS[p] for p in args.paths], args.sizes, render_s=args.render_seconds,
                           poll_s=args.poll_interval, parallelism=args.parallelism, timeout=args.run_timeout,
                           keep_home=args.keep_home, warmup=args.warmup, on_result=write)
    written = write(results)
    print()
    print(markdown_table(results))
    print(f"\nwrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if any(r.status == "failed" for r in results):
        sys.exit(1)
    return results


if __name__ == "__main__":
    main()
