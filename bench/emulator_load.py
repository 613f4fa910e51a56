"""Load benchmark of the magicvideo emulator (not a test).

Starts the emulator as a subprocess with ``--render fast``, creates 5,000 jobs, then hammers
``GET /v2/video/generations`` from a pool of concurrent aiohttp clients over loopback, and prints a
markdown table: requests/s, p50/p99 latency and the emulator's CPU seconds. Finally it times full
5 s @ 24 fps renders of a couple of templates in this process.

    python -m bench.emulator_load [--jobs 5000] [--clients 32] [--seconds 10] [--max-requests 30000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import statistics
import tempfile
import time

import aiohttp
from PIL import Image

from airflow_provider_magicvideo.emulator import render
from airflow_provider_magicvideo.emulator.server import EmulatorProcess
from tooling.sampling import process_cpu

AUTH = {"Authorization": "Bearer bench-key"}


def tiny_png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 90)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def create_jobs(base_url: str, count: int, concurrency: int) -> list[str]:
    body = {"model": "magic/image-to-video", "image_url": tiny_png(), "template": "Tokyo Billboard"}
    ids: list[str] = []
    queue = iter(range(count))

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in queue:
            async with session.post(f"{base_url}/video/generations", json=body, headers=AUTH) as response:
                ids.append((await response.json())["id"])

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return ids


async def hammer(base_url: str, ids: list[str], clients: int, seconds: float, limit: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    url = f"{base_url}/video/generations"

    async def client(session: aiohttp.ClientSession, offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline and len(latencies) < limit:
            started = time.perf_counter()
            params = {"generation_id": ids[i % len(ids)]}
            async with session.get(url, params=params, headers=AUTH) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status GET answered {response.status}")
            latencies.append(time.perf_counter() - started)
            i += clients

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session, k) for k in range(clients)))
    return latencies


def time_full_renders(templates: list[str]) -> list[tuple[str, float, float]]:
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), (30, 160, 220)).save(buffer, format="PNG")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for template in templates:
            spec = render.RenderSpec(
                "magic/image-to-video",
                template,
                f"{tmp}/{len(results)}.mp4",
                media=buffer.getvalue(),
                fps=24,
                duration=5.0,
            )
            wall, cpu = time.perf_counter(), time.process_time()
            render.render(spec)
            results.append((template, time.perf_counter() - wall, time.process_time() - cpu))
        spec = render.RenderSpec(
            "magic/text-to-video",
            "Shanghai Drone Show",
            f"{tmp}/t2v.mp4",
            prompt="Airflow drone show",
            fps=24,
            duration=5.0,
        )
        wall, cpu = time.perf_counter(), time.process_time()
        render.render(spec)
        results.append(("Shanghai Drone Show (text)", time.perf_counter() - wall, time.process_time() - cpu))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=30000)
    args = parser.parse_args()

    with EmulatorProcess(render="fast", render_seconds=3600, log_path=os.devnull) as emulator:
        assert emulator.process is not None
        pid = emulator.process.pid
        started = time.perf_counter()
        ids = asyncio.run(create_jobs(emulator.base_url, args.jobs, args.clients))
        create_s = time.perf_counter() - started
        cpu_before = process_cpu(pid)
        started = time.perf_counter()
        latencies = asyncio.run(hammer(emulator.base_url, ids, args.clients, args.seconds, args.max_requests))
        elapsed = time.perf_counter() - started
        server_cpu = process_cpu(pid) - cpu_before
        jobs = sum(emulator.stats()["jobs_by_status"].values())

    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"\n{jobs} jobs created in {create_s:.1f} s ({args.jobs / create_s:.0f} POST/s)\n")
    print("| phase | requests | clients | req/s | p50 ms | p99 ms | emulator CPU s | req per CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| status GET | {len(latencies)} | {args.clients} | {len(latencies) / elapsed:.0f} | {p50:.2f} "
        f"| {p99:.2f} | {server_cpu:.2f} | {len(latencies) / max(server_cpu, 1e-9):.0f} |"
    )
    print("\n| full render (5 s @ 24 fps, 608x1080) | wall s | CPU s |")
    print("|---|---|---|")
    for template, wall, cpu in time_full_renders(["Thailand Street", "Rotating Cards"]):
        print(f"| {template} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
