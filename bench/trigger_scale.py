"""How many renders can one process wait on? MagicVideoTrigger vs the HTTP provider's trigger vs the doc's loop.

For each N and contender: a fresh emulator in its own process (``--render fast``), N renders submitted
(spread evenly over one poll interval, as tasks deferring one after another would), then ONE child process
waits on all N with the contender, each wait starting at a random phase within one poll interval:

* ``magicvideo``: ``MagicVideoTrigger.run()`` (this project), all in one asyncio event loop;
* ``http``: ``airflow.providers.http`` ``HttpEventTrigger.run()`` polling the same status endpoint
  (``GET /v2/video/generations?generation_id=ID``, Bearer header from the ``http`` connection's extra) with
  ``response_check_path`` → ``bench/_harness_check.py:is_final`` (True on ``completed``/``error``);
* ``sample``: the API doc's sample ``get_video`` loop (blocking ``requests`` + ``time.sleep``), a thread each.

Measured per run: child CPU per poll (CPU from the first wait to the last event / status GETs the emulator
served), peak RSS above the post-import baseline per waiting render (parent samples the child's RSS every
0.1 s), TCP connections opened (``socket.connect`` calls to the emulator port, counted in the child), status
requests per second, completion→event latency (event time in the child minus the emulator's ``completed_at``)
and the emulator's own CPU seconds.

    python bench/trigger_scale.py                      # N = 100 1000 5000, poll 5 s, render 30 s
    python bench/trigger_scale.py --n 1000 --contenders magicvideo http
    python bench/trigger_scale.py --smoke              # N = 20, poll 0.5 s, render 2 s (< 60 s)
    python bench/trigger_scale.py --n 100 1000 5000 --trigger-runner 1000   # + both triggers in TriggerRunner

Writes ``bench/results/trigger_scale.md`` and ``bench/results/trigger_scale.png`` (not with ``--smoke``,
unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    CONTENDERS,
    TARGETS_NOTE,
    RunResult,
    load_result,
    markdown_table,
    run_contender,
    targets_report,
    write_plot,
)

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 5000], help="renders waited on per run")
    parser.add_argument("--poll", type=float, default=5.0, help="poll interval, seconds (all contenders)")
    parser.add_argument("--render", type=float, default=30.0, help="seconds from submit to completed")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--sample-max-n", type=int, default=None,
                        help="skip the thread-per-render sample loop above this N (default: run it)")
    parser.add_argument("--smoke", action="store_true", help="N=20, poll 0.5 s, render 2 s; no result files")
    parser.add_argument("--from-results", type=Path, nargs="+", default=None, metavar="RESULT_JSON",
                        help="do not run: rebuild the table and plot from saved per-run result.json files")
    parser.add_argument("--out", type=Path, default=None, help=f"results directory (default {RESULTS})")
    parser.add_argument("--trigger-runner", type=int, nargs="*", default=None, metavar="N",
                        help="also run both triggers through Airflow's TriggerRunner (in-process, no supervisor/DB) "
                             "at these N (default: 1000)")
    parser.add_argument("--triggerer", action="store_true",
                        help="a real `airflow triggerer` with PostgreSQL: NOT implemented (see the results file)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.poll, args.render = [20], 0.5, 2.0
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


def main(argv: list[str] | None = None) -> list[RunResult]:
    args = parse_args(argv)
    if args.triggerer:
        print("[trigger_scale] --triggerer: a real `airflow triggerer` + PostgreSQL mode is not implemented; "
              "use --trigger-runner for Airflow's TriggerRunner in-process.", file=sys.stderr)
    if args.from_results:
        results = [load_result(path) for path in args.from_results]
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
        out.mkdir(parents=True, exist_ok=True)
        header = (
            "# Trigger scale benchmark\n\n"
            f"Command: `python bench/trigger_scale.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
            f" (poll {args.poll:g} s, render {args.render:g} s).\n\n"
        )
        (out / "trigger_scale.md").write_text(header + table + "\n\n" + verdicts + "\n\n" + TARGETS_NOTE + "\n")
        write_plot(results, out / "trigger_scale.png")
        print(f"\nwrote {out / 'trigger_scale.md'} and {out / 'trigger_scale.png'}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
