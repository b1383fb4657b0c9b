"""Capacity of replicas behind HAProxy on this machine (docs/SCALING.md).

    python benchmarks/scale.py [--rounds 3] [--requests 40] [--concurrency 6]

Starts Redis, three replicas (``--threads 1 --max-workers 1``: at most one core each) and
three HAProxy instances (deploy/haproxy.cfg) in front of the first 1, 2 and 3 of them, then:

* capacity: the same closed-loop Wyoming load (``--concurrency`` clients, every text new, so
  no cache hit) through each balancer in turn, and, as the baseline of the same run, straight
  to one replica without HAProxy; the order rotates every round. Throughput (requests/s),
  first audio p50/p95, and the cores the replicas used (their CPU time / wall time);
* cost: CPU-seconds per second of audio for each default voice (one replica, one request
  at a time, CPU time from /proc);
* cross-replica cache: 20 announcements × 4 through the three replicas, with Redis, then
  (new announcements) with Redis stopped, each replica on its own cache.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from wyoming.tts import Synthesize, SynthesizeVoice

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from report import write_section  # noqa: E402
from scale_cluster import HAProxy, Replica, start_haproxy, start_redis, start_replicas, wyoming_say  # noqa: E402
from conftest import exchange  # noqa: E402

SCALING_MD = Path(__file__).resolve().parent.parent / "docs" / "SCALING.md"
ROOMS = ["客厅", "卧室", "厨房", "书房", "阳台", "车库"]
_counter = itertools.count(1)


def new_text() -> str:
    """An announcement nobody asked for before (5–6 s of speech)."""
    n = next(_counter)
    return f"第{n}号提醒，{ROOMS[n % len(ROOMS)]}温度{n % 15 + 15}度，湿度百分之{n % 40 + 30}。"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def health(replica: Replica) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{replica.http_port}/health", timeout=5) as response:
        return json.load(response)


async def closed_loop(port: int, requests: int, concurrency: int) -> tuple[float, list[float], int]:
    """(requests/s, first-audio seconds, errors) for ``requests`` new texts, ``concurrency`` at a time."""
    texts = [new_text() for _ in range(requests)]
    semaphore = asyncio.Semaphore(concurrency)

    async def one(text: str) -> Any:
        async with semaphore:
            return await wyoming_say(port, text)

    started = time.monotonic()
    outcomes = await asyncio.gather(*(one(t) for t in texts))
    elapsed = time.monotonic() - started
    return requests / elapsed, [o.first_audio for o in outcomes if o.ok and o.first_audio is not None], sum(not o.ok for o in outcomes)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 2 else float("nan")


async def capacity(replicas: list[Replica], balancers: dict[str, HAProxy], args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    targets = {"1 replica, no HAProxy": replicas[0].wyoming_port, **{name: lb.wyoming_port for name, lb in balancers.items()}}
    results: dict[str, dict[str, list[float]]] = {name: {"rps": [], "p50": [], "p95": [], "cores": [], "errors": []} for name in targets}
    names = list(targets)
    await closed_loop(replicas[0].wyoming_port, 4, 2)  # warm-up
    for round_ in range(args.rounds):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            before = sum(cpu_seconds(r.server.process.pid) for r in replicas)
            started = time.monotonic()
            rps, first, errors = await closed_loop(targets[name], args.requests, args.concurrency)
            cores = (sum(cpu_seconds(r.server.process.pid) for r in replicas) - before) / (time.monotonic() - started)
            for key, value in (("rps", rps), ("p50", statistics.median(first)), ("p95", p95(first)), ("cores", cores), ("errors", errors)):
                results[name][key].append(value)
            print(f"round {round_ + 1} {name}: {rps:.2f} req/s, first audio p50 {statistics.median(first) * 1000:.0f} ms "
                  f"p95 {p95(first) * 1000:.0f} ms, {cores:.2f} cores, {errors} errors, load {os.getloadavg()[0]:.1f}", flush=True)
    return results


async def cost(replica: Replica) -> dict[str, tuple[float, float]]:
    """Voice → (CPU-seconds per second of audio, CPU-seconds per request), one request at a time."""
    voices = {
        "zh_CN-baker": [new_text() for _ in range(12)],
        "en_US-joe-medium": [f"Reminder {n}: the {room} is at {n % 15 + 15} degrees and the humidity is {n % 40 + 30} percent."
                             for n, room in zip(range(next(_counter), next(_counter) + 12), itertools.cycle(["kitchen", "garage", "bedroom"]))],
    }
    figures = {}
    for voice, texts in voices.items():
        before = cpu_seconds(replica.server.process.pid)
        audio = 0.0
        for text in texts:
            received = await exchange(replica.wyoming_port, Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
            audio += received.duration
        used = cpu_seconds(replica.server.process.pid) - before
        figures[voice] = (used / audio, used / len(texts))
        print(f"{voice}: {used / audio:.3f} CPU-s per audio-s, {used / len(texts) * 1000:.0f} CPU-ms per request", flush=True)
    return figures


async def cache_hits(replicas: list[Replica], balancer: HAProxy, stop_redis: Any) -> dict[str, dict[str, float]]:
    """Hit rates of a repeated-announcement workload, with the shared cache and with local caches only."""
    figures = {}
    for label in ("with Redis", "Redis stopped"):
        if label == "Redis stopped":
            stop_redis()
        phrases = [new_text() for _ in range(20)]
        requests = phrases * 4
        random.Random(7).shuffle(requests)
        before = [health(r)["cache"] for r in replicas]
        semaphore = asyncio.Semaphore(4)

        async def one(text: str) -> Any:
            async with semaphore:
                return await wyoming_say(balancer.wyoming_port, text)

        outcomes = await asyncio.gather(*(one(t) for t in requests))
        after = [health(r)["cache"] for r in replicas]
        hits = sum(a["hits"] - b["hits"] for a, b in zip(after, before))
        lookups = hits + sum(a["misses"] - b["misses"] for a, b in zip(after, before))
        shared = sum(a.get("shared_hits", 0) - b.get("shared_hits", 0) for a, b in zip(after, before))
        figures[label] = {"hit_rate": hits / lookups, "shared_hits": shared, "lookups": lookups, "errors": sum(not o.ok for o in outcomes)}
        print(f"{label}: hit rate {hits / lookups:.2f} ({shared} of {hits} hits from Redis), errors {figures[label]['errors']}", flush=True)
    return figures


async def run(args: argparse.Namespace) -> str:
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"scale-bench-{os.getpid()}"
    folder.mkdir(parents=True)
    redis_server = start_redis(folder)
    replicas = await asyncio.to_thread(start_replicas, folder, 3, redis_server.url)
    balancers: dict[str, HAProxy] = {}
    try:
        for count in (1, 2, 3):
            sub = folder / f"lb{count}"
            sub.mkdir()
            balancers[f"{count} replica{'s' if count > 1 else ''} behind HAProxy"] = lb = start_haproxy(sub, [(r.wyoming_port, r.http_port) for r in replicas[:count]])
            await asyncio.to_thread(lb.wait_until, {f"r{k}": "UP" for k in range(count)})
        load = await capacity(replicas, balancers, args)
        costs = await cost(replicas[0])
        hits = await cache_hits(replicas, list(balancers.values())[-1], redis_server.stop)
    finally:
        for lb in balancers.values():
            lb.stop()
        for replica in replicas:
            replica.server.process.kill()
        redis_server.stop()
    return report(load, costs, hits, args)


def report(load: dict[str, dict[str, list[float]]], costs: dict[str, tuple[float, float]], hits: dict[str, dict[str, float]],
           args: argparse.Namespace) -> str:
    ms = lambda values: f"{statistics.median(values) * 1000:.0f}"  # noqa: E731
    rows = [
        f"| {name} | {statistics.median(r['rps']):.2f} ({', '.join(f'{x:.2f}' for x in r['rps'])}) | {ms(r['p50'])} "
        f"| {ms(r['p95'])} ({', '.join(f'{x * 1000:.0f}' for x in r['p95'])}) | {statistics.median(r['cores']):.2f} "
        f"| {statistics.median([q / c for q, c in zip(r['rps'], r['cores'])]):.2f} | {int(sum(r['errors']))} |"
        for name, r in load.items()
    ]
    cost_rows = [f"| {voice} | {per_audio:.3f} | {per_request * 1000:.0f} |" for voice, (per_audio, per_request) in costs.items()]
    hit_rows = [f"| {label} | {h['hit_rate']:.0%} | {int(h['shared_hits'])} | {int(h['lookups'])} | {int(h['errors'])} |" for label, h in hits.items()]
    return "\n".join([
        "## Capacity by replica count",
        "",
        f"Closed loop of {args.concurrency} Wyoming clients, {args.requests} new announcements (5–6 s of speech each) per run,"
        f" medians of {args.rounds} rounds (each round's figure in brackets); replicas with `--threads 1 --max-workers 1`.",
        "",
        "| target | requests/s | first audio p50 (ms) | first audio p95 (ms) | cores the replicas got | requests/s per core | errors |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "## Cost per request (one replica, `--threads 1`, one request at a time)",
        "",
        "| voice | CPU-seconds per second of audio | CPU-ms per request |",
        "|---|---|---|",
        *cost_rows,
        "",
        "## Cross-replica cache (20 announcements × 4, shuffled, through 3 replicas, 4 clients)",
        "",
        "| cache | hit rate (sentence lookups) | hits answered by Redis | lookups | errors |",
        "|---|---|---|---|---|",
        *hit_rows,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    body = asyncio.run(run(args))
    body += f"\n\nLoad average of the shared host (other tenants included) before the run: {load_before[0]:.1f}, after: {os.getloadavg()[0]:.1f}."
    print(body)
    if not args.no_write:
        write_section("capacity", body, "python benchmarks/scale.py", SCALING_MD)


if __name__ == "__main__":
    main()
