"""How many renders can one process wait on? MagicVideoTrigger vs the HTTP provider's trigger vs the doc's loop.

For each N and contender: a fresh emulator in its own process (``--render fast``), N renders submitted
(spread evenly over one poll interval, as tasks deferring one after another would), then ONE child process
waits on all N with the contender, each wait starting at a random phase within one poll interval:

* ``magicvideo``: ``MagicVideoTrigger.run()`` (this project), all in one asyncio event loop;
* ``http``: ``airflow.providers.http`` ``HttpEventTrigger.run()`` polling the same status endpoint
  (``GET /v2/video/generations?generation_id=ID``, Bearer header from the ``http`` connection's extra) with
  ``response_check_path`` → ``bench._harness_check.is_final`` (True on ``completed``/``error``);
* ``sample``: the API doc's sample ``get_video`` loop (blocking ``requests`` + ``time.sleep``), a thread each.

What is measured and how: bench/results/trigger_scale.md, "Method".

    python -m bench.trigger_scale                      # N = 100 1000 5000, poll 5 s, render 30 s
    python -m bench.trigger_scale --n 1000 --contenders magicvideo http
    python -m bench.trigger_scale --smoke              # N = 20, poll 1 s, render 2 s
    python -m bench.trigger_scale --n 100 1000 5000 --trigger-runner 1000   # + both triggers in TriggerRunner
    python -m bench.trigger_scale --triggerer 1000     # real `airflow triggerer` + PostgreSQL (bench/triggerer_mode.py)

Writes the generated block of ``bench/results/trigger_scale.md`` (the prose around it is kept) and
``bench/results/trigger_scale.png`` (not with ``--smoke``, unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench._harness import CONTENDERS, RunResult, markdown_table, run_contender, targets_report, write_plot
from tooling.results import write_generated

RESULTS = Path(__file__).resolve().parent / "results"
# Method and analysis are prose in bench/results/trigger_scale.md and trigger_scale_triggerer.md; a run rewrites
# only their generated block (tooling.results.write_generated).


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 5000], help="renders waited on per run")
    parser.add_argument("--poll", type=float, default=5.0, help="poll interval, seconds (all contenders)")
    parser.add_argument("--render", type=float, default=30.0, help="seconds from submit to completed")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--sample-max-n", type=int, default=None,
                        help="skip the thread-per-render sample loop above this N (default: run it)")
    parser.add_argument("--smoke", action="store_true", help="N=20, poll 1 s, render 2 s; no result files")
    parser.add_argument("--from-results", type=Path, nargs="+", default=None, metavar="RESULT_JSON",
                        help="do not run: rebuild the table and plot from saved per-run result.json files")
    parser.add_argument("--out", type=Path, default=None, help=f"results directory (default {RESULTS})")
    parser.add_argument("--trigger-runner", type=int, nargs="*", default=None, metavar="N",
                        help="also run both triggers through Airflow's TriggerRunner (in-process, no supervisor/DB) "
                             "at these N (default: 1000)")
    parser.add_argument("--triggerer", type=int, default=None, metavar="N",
                        help="instead: N mapped deferrable tasks per contender (magicvideo, http) in a real "
                             "deployment - PostgreSQL, scheduler + LocalExecutor, ONE `airflow triggerer` "
                             "(bench/triggerer_mode.py); writes bench/results/trigger_scale_triggerer.md")
    parser.add_argument("--triggerer-window", type=float, default=None, metavar="S",
                        help="--triggerer: steady waiting window measured, seconds (default max(30, 6 x poll))")
    parser.add_argument("--triggerer-parallelism", type=int, default=8, metavar="P",
                        help="--triggerer: LocalExecutor parallelism (task slots bringing TIs to deferral)")
    parser.add_argument("--triggerer-ramp-timeout", type=float, default=3600, metavar="S",
                        help="--triggerer: give up when the N TIs are not all deferred after this many seconds")
    parser.add_argument("--triggerer-http-n", type=int, default=None, metavar="N",
                        help="--triggerer: N for the HttpEventTrigger contender (default: the same N)")
    parser.add_argument("--triggerer-finish-runs", action="store_true",
                        help="--triggerer: let every resumed task finish (default: stop the run after the events)")
    parser.add_argument("--keep-home", action="store_true", help="--triggerer: keep AIRFLOW_HOME (logs)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.poll, args.render = [20], 1.0, 2.0  # 1 s: the shortest poll MagicVideoTrigger accepts
    if args.trigger_runner == []:
        args.trigger_runner = [20] if args.smoke else [1000]
    return args


def run(args: argparse.Namespace) -> list[RunResult]:
    results: list[RunResult] = []
    for n in args.n:
        for contender in args.contenders:
            if contender == "sample" and args.sample_max_n is not None and n > args.sample_max_n:
                results.append(RunResult.skipped(contender, n, args.poll, "skipped: N > --sample-max-n"))
                continue
            print(f"[trigger_scale] {contender} N={n} poll={args.poll}s render={args.render}s ...",
                  file=sys.stderr, flush=True)
            result = run_contender(contender, n, poll=args.poll, render_seconds=args.render)
            print(f"[trigger_scale]   {result.summary()}", file=sys.stderr, flush=True)
            results.append(result)
    for n in args.trigger_runner or []:
        for contender in ("magicvideo", "http"):
            if contender not in args.contenders:
                continue
            print(f"[trigger_scale] {contender} via TriggerRunner N={n} ...", file=sys.stderr, flush=True)
            result = run_contender(contender, n, poll=args.poll, render_seconds=args.render, via="triggerrunner")
            print(f"[trigger_scale]   {result.summary()}", file=sys.stderr, flush=True)
            results.append(result)
    return results


def run_triggerer_mode(args: argparse.Namespace, argv: list[str] | None) -> list:
    from bench.triggerer_mode import markdown_table as triggerer_table
    from bench.triggerer_mode import run_triggerer

    ns = {c: args.triggerer for c in ("magicvideo", "http") if c in args.contenders}
    if "http" in ns and args.triggerer_http_n:
        ns["http"] = args.triggerer_http_n
    window = args.triggerer_window or max(30.0, 6 * args.poll)
    out = args.out if args.out is not None else RESULTS
    started = time.monotonic()
    results = run_triggerer(ns, poll=args.poll, window=window, parallelism=args.triggerer_parallelism,
                            ramp_timeout=args.triggerer_ramp_timeout, finish_runs=args.triggerer_finish_runs,
                            keep_home=args.keep_home, runs=out / "runs")
    table = triggerer_table(results)
    print()
    print(table)
    command = " ".join(argv if argv is not None else sys.argv[1:])
    write_generated(
        out / "trigger_scale_triggerer.md",
        f"Command: `python -m bench.trigger_scale {command}` (poll {args.poll:g} s, window {window:g} s, "
        f"LocalExecutor parallelism {args.triggerer_parallelism}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f", {os.cpu_count()} cores, whole run {time.monotonic() - started:.0f} s).\n\n" + table,
        title="Trigger scale in a real `airflow triggerer` on PostgreSQL",
        prose="bench/results/trigger_scale_triggerer.md")
    print(f"\nwrote {out / 'trigger_scale_triggerer.md'}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> list[RunResult]:
    args = parse_args(argv)
    if args.triggerer:
        return run_triggerer_mode(args, argv)
    if args.from_results:
        results = [RunResult.load(path) for path in args.from_results]
        order = {c: i for i, c in enumerate(CONTENDERS)}
        results.sort(key=lambda r: (r.via != "direct", r.n, order[r.contender]))
    else:
        results = run(args)
    table = markdown_table(results)
    verdicts = targets_report(results, poll=args.poll)
    print()
    print(table)
    print()
    print(verdicts)
    out = args.out if args.out is not None else (None if args.smoke else RESULTS)
    if out is not None:
        command = " ".join(argv if argv is not None else sys.argv[1:])
        write_generated(
            out / "trigger_scale.md",
            f"Command: `python -m bench.trigger_scale {command}` (poll {args.poll:g} s, render {args.render:g} s; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores).\n\n"
            + table + "\n\n" + verdicts,
            title="Trigger scale benchmark", prose="bench/results/trigger_scale.md")
        write_plot(results, out / "trigger_scale.png")
        print(f"\nwrote {out / 'trigger_scale.md'} and {out / 'trigger_scale.png'}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
