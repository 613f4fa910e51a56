"""Delivery benchmark: stream a 1 GB render from the emulator to file:// and to S3 (moto), vs plain copies.

    python -m bench.delivery [--size-mb 1024] [--chunk-kb 1024] [--skip-s3]

Everything runs on 127.0.0.1. The emulator runs as a child process with a prepared ``--state-dir``: a
generated ``size`` MP4-signed file is placed in its file store and registered as a completed job, so the
emulator signs real presigned URLs for it and serves it with Content-Length/Range. moto's S3 server
also runs as a child process, so the delivering process's RSS is only the delivery's own.

Prints a markdown table: MB/s of each run, the ratio to the plain loopback copy of the same bytes
(requests streaming into a file, no hashing), and the peak RSS growth of this process during the run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tooling.results import write_generated
from tooling.s3 import aws_connection, moto_process, s3_client
from tooling.sampling import RssPeak

REPO = Path(__file__).resolve().parents[1]

_HOME = Path(tempfile.mkdtemp(prefix="magicvideo-bench-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

MB = 1_000_000
GEN_ID = "f_bench1gb0000000000"


# ================================================================================================ setup
def make_video(path: Path, size: int) -> str:
    """Write ``size`` bytes starting with an ``ftyp`` box; return their sha256."""
    header = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2mp41"
    block = os.urandom(1 << 20)
    digest = hashlib.sha256(header)
    with path.open("wb") as out:
        out.write(header)
        left = size - len(header)
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def prepare_state(state_dir: Path, size: int) -> str:
    """A state dir holding one completed job whose file is the generated video."""
    from airflow_provider_magicvideo.emulator.state import Job, JobStore

    files = state_dir / "files"
    files.mkdir(parents=True, exist_ok=True)
    video = files / f"{GEN_ID}.mp4"
    digest = make_video(video, size)
    now = time.time() - 60
    store = JobStore(state_dir)
    job = Job(id=GEN_ID, model="magic/image-to-video", template="Thailand Street", source=None, created_at=now,
              render_seconds=1.0, waits=False, file_name=secrets.token_hex(16))
    job.finish(str(video), now)
    store.save(job)
    store.close()
    return digest


# ============================================================================================ measuring
def measure(label: str, size: int, run: Callable[[], Any], rows: list[dict[str, Any]], repeat: int) -> Any:
    best: dict[str, Any] | None = None
    value = None
    for _ in range(repeat):
        with RssPeak() as rss:
            started = time.perf_counter()
            value = run()
            elapsed = time.perf_counter() - started
        row = {"label": label, "seconds": elapsed, "mbps": size / elapsed / MB, "rss": rss.growth_mb}
        if best is None or row["mbps"] > best["mbps"]:
            best = {**row, "rss": max(row["rss"], best["rss"] if best else 0.0)}
        elif best is not None:
            best["rss"] = max(best["rss"], row["rss"])
    assert best is not None
    rows.append(best)
    print(f"  {label}: {best['mbps']:.0f} MB/s, peak RSS +{best['rss']:.1f} MiB", file=sys.stderr)
    return value


# ================================================================================================= main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="video size in MiB (default 1024)")
    parser.add_argument("--chunk-kb", type=int, default=1024, help="delivery chunk size in KiB")
    parser.add_argument("--repeat", type=int, default=2, help="runs per row; the best is reported")
    parser.add_argument("--skip-s3", action="store_true")
    # Target, method and caveats are prose in bench/results/delivery.md; a run rewrites its generated block only.
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "delivery.md",
                        help="markdown results file (default bench/results/delivery.md; '-' for none)")
    args = parser.parse_args()

    import logging

    import requests

    from airflow_provider_magicvideo.delivery import deliver_generation

    for name in ("airflow_provider_magicvideo", "airflow.task.hooks", "airflow.providers.amazon"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from airflow_provider_magicvideo.emulator.server import EmulatorProcess
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook

    size = args.size_mb * 2**20
    chunk = args.chunk_kb * 1024
    work = Path(tempfile.mkdtemp(prefix="magicvideo-bench-"))
    rows: list[dict[str, Any]] = []
    try:
        print(f"generating a {size / MB:.0f} MB video in {work} ...", file=sys.stderr)
        digest = prepare_state(work / "state", size)
        out = work / "out"
        out.mkdir()
        with EmulatorProcess(state_dir=work / "state", render="fast", log_level="warning") as emulator, \
                contextlib.ExitStack() as stack:
            os.environ["AIRFLOW_CONN_MAGICVIDEO_DEFAULT"] = json.dumps(
                {"conn_type": "magicvideo", "host": emulator.base_url, "password": "bench-key"})
            hook = MagicVideoHook()
            url = hook.get_generation(GEN_ID).video_url
            assert url

            def plain_copy(target: str) -> None:
                with requests.get(url, stream=True, timeout=60) as resp, open(target, "wb") as sink:
                    resp.raise_for_status()
                    for piece in resp.iter_content(chunk):
                        sink.write(piece)

            measure("loopback copy: requests → /dev/null", size, lambda: plain_copy(os.devnull), rows, args.repeat)
            measure("loopback copy: requests → file", size, lambda: plain_copy(str(out / "plain.mp4")), rows,
                    args.repeat)
            (out / "plain.mp4").unlink()

            def deliver(target: Any) -> Any:
                result = deliver_generation(hook, GEN_ID, target, chunk_size=chunk, overwrite="always")
                assert result.sha256 == digest and result.size == size, result
                return result

            measure("deliver_generation → file://", size, lambda: deliver(f"file://{out}/video.mp4"), rows,
                    args.repeat)
            (out / "video.mp4").unlink()

            if not args.skip_s3:
                endpoint = stack.enter_context(moto_process())
                from airflow.providers.common.compat.sdk import ObjectStoragePath

                conn_id = stack.enter_context(aws_connection(endpoint, "aws_bench"))
                client = s3_client(endpoint)
                client.create_bucket(Bucket="bench")
                target = ObjectStoragePath("s3://bench/video.mp4", conn_id=conn_id)

                def plain_s3() -> None:
                    with requests.get(url, stream=True, timeout=60) as resp, \
                            target.fs.open("bench/plain.mp4", "wb", block_size=8 << 20) as sink:
                        for piece in resp.iter_content(chunk):
                            sink.write(piece)

                measure("loopback copy: requests → s3fs (moto)", size, plain_s3, rows, 1)
                client.delete_object(Bucket="bench", Key="plain.mp4")
                measure("deliver_generation → s3:// (moto)", size, lambda: deliver(target), rows, 1)
                head = client.head_object(Bucket="bench", Key="video.mp4")
                assert head["ContentLength"] == size
            hook.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    baseline = {"file": next(r for r in rows if r["label"].endswith("→ file"))["mbps"]}
    s3_base = next((r["mbps"] for r in rows if "requests → s3fs" in r["label"]), None)
    lines = [f"{size / 2**20:.0f} MiB video, chunk {chunk // 1024} KiB, best of {args.repeat} "
             "(S3 rows: 1 run), loopback only", "",
             "| run | MB/s | vs plain copy | peak RSS growth |", "|---|---:|---:|---:|"]
    for row in rows:
        ref = s3_base if "s3" in row["label"] else baseline["file"]
        ratio = f"{row['mbps'] / ref:.0%}" if ref and "deliver" in row["label"] else "—"
        lines.append(f"| {row['label']} | {row['mbps']:.0f} | {ratio} | {row['rss']:.1f} MiB |")
    table = "\n".join(lines)
    print("\n" + table)
    if str(args.out) != "-":
        load = os.getloadavg()[0]
        write_generated(
            args.out,
            f"Command: `python -m bench.delivery {' '.join(sys.argv[1:])}`"
            f" ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores,"
            f" 1-min load average {load:.2f} at the end).\n\n" + table,
            title="Delivery benchmark", prose="bench/results/delivery.md")
        print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
