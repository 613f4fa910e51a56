"""`make demo`: render a real MP4 through a real Airflow DAG, offline, against the bundled API emulator.

1. an Airflow home in ``.demo/airflow`` (SQLite) with this repo's ``dags/`` folder, migrated;
2. the AI/ML API emulator in its own process (``magicvideo-emulator``), real H.264 + AAC renders;
3. ``airflow dags test magicvideo_quickstart`` (submit → deferrable wait → deliver), connection from
   ``AIRFLOW_CONN_MAGICVIDEO_DEFAULT``;
4. the emulator is stopped and the MP4 is probed: path, duration, resolution, audio stream.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av

from airflow_provider_magicvideo.emulator.server import run_emulator_process

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"


def airflow_env() -> dict[str, str]:
    home = DEMO / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        MAGICVIDEO_POLL_SECONDS="2",  # the emulator renders in seconds; real renders take minutes
    )
    return env


def run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    if proc.returncode != 0:
        print(log.read_text()[-6000:], file=sys.stderr)
        raise SystemExit(f"`{' '.join(cmd[:4])} …` failed (exit {proc.returncode}); full log: {log}")


def describe(mp4: Path, frame_png: Path) -> list[str]:
    with av.open(str(mp4)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = float(container.duration or 0) / av.time_base
        middle = max(1, (video.frames or 1) // 2)
        for index, frame in enumerate(container.decode(video=0)):
            if index >= middle:
                frame.to_image().save(frame_png)
                break
    lines = [
        f"MP4:        {mp4}",
        f"size:       {mp4.stat().st_size:,} bytes",
        f"duration:   {duration:.2f} s",
        f"video:      {video.codec_context.name} {video.codec_context.width}x{video.codec_context.height} "
        f"@ {float(video.average_rate or 0):.0f} fps",
        "audio:      " + (f"{audio.codec_context.name} {audio.codec_context.sample_rate} Hz, "
                          f"{audio.codec_context.channels} ch" if audio else "none"),
        f"still:      {frame_png}",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="Times Square Billboard")
    parser.add_argument("--image", default=str(ROOT / "dags" / "data" / "products" / "sku-1001.png"))
    parser.add_argument("--render-seconds", type=float, default=8.0, help="emulated render time")
    parser.add_argument("--update-readme-frame", action="store_true", help="also copy the still to docs/")
    args = parser.parse_args()

    started = time.monotonic()
    env = airflow_env()
    output = DEMO / "output"
    output.mkdir(parents=True, exist_ok=True)
    print("1/4 migrating the demo Airflow database (.demo/airflow, SQLite)…", flush=True)
    run([sys.executable, "-m", "airflow", "db", "migrate"], env, DEMO / "db-migrate.log")

    api_key = os.environ.get("MAGICVIDEO_API_KEY", "demo-key")
    print("2/4 starting the AI/ML API emulator…", flush=True)
    with run_emulator_process(render_seconds=args.render_seconds, keys=[api_key],
                              state_dir=str(DEMO / "emulator"), log_path=str(DEMO / "emulator.log")) as emulator:
        env["AIRFLOW_CONN_MAGICVIDEO_DEFAULT"] = json.dumps(
            {"conn_type": "magicvideo", "host": emulator.base_url, "password": api_key,
             "extra": {"allow_insecure_video_urls": True}}
        )
        conf = {"image": args.image, "template": args.template, "output_dir": str(output)}
        print(f"3/4 airflow dags test magicvideo_quickstart (emulator at {emulator.base_url})…", flush=True)
        before = set(output.glob("*.mp4"))
        run([sys.executable, "-m", "airflow", "dags", "test", "magicvideo_quickstart", "--conf", json.dumps(conf)],
            env, DEMO / "dags-test.log")
        posts = emulator.stats().get("total_posts")
    print("4/4 emulator stopped; probing the video…", flush=True)
    produced = sorted(set(output.glob("*.mp4")) - before, key=lambda p: p.stat().st_mtime)
    if not produced:
        raise SystemExit(f"The DAG run finished but no MP4 appeared in {output}; see {DEMO / 'dags-test.log'}")
    mp4 = produced[-1]
    frame = mp4.with_suffix(".png")
    print("\n".join(["", "Rendered through Airflow (magicvideo_quickstart):", *describe(mp4, frame),
                     f"renders submitted: {posts}", f"took:       {time.monotonic() - started:.0f} s"]))
    if args.update_readme_frame:
        shutil.copyfile(frame, ROOT / "docs" / "demo-frame.png")


if __name__ == "__main__":
    main()
