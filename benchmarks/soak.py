"""Soak test over Wyoming on loopback: many clients, mixed requests, bounded in count and time.

    python benchmarks/soak.py                 # 20 clients x 50 requests
    python benchmarks/soak.py --clients 5 --requests 10

Mix per client: plain Chinese and English requests, Home Assistant-style text streams,
repeated announcements (cache hits), mixed-script text, and clients that disconnect
after the first audio chunk. Reports requests, errors, latency percentiles and the
server's RSS after one request, after a warm-up at the soak's concurrency (the start) and at the
end; writes docs/BENCHMARKS.md and docs/RELIABILITY.md figures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import Result, free_port, percentile, request, start  # noqa: E402
from report import write_section  # noqa: E402
from workload import EN_SENTENCES, ZH_SENTENCES  # noqa: E402

MIXED = ["打开Home Assistant的客厅灯。", "PM2.5浓度是35。", "Wi-Fi密码已更新。", "客厅温度23.5°C，湿度60%。"]
REPEATED = ["洗衣机的衣服已经洗好了。", "The front door is open."]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def streamed(port: int, text: str) -> Result:
    """Home Assistant's sequence: start, chunks, the compatibility synthesize, stop."""
    started = time.monotonic()
    first: float | None = None
    client = AsyncTcpClient("127.0.0.1", port)
    try:
        await client.connect()
        await client.write_event(SynthesizeStart().event())
        for k in range(0, len(text), 4):
            await client.write_event(SynthesizeChunk(text=text[k : k + 4]).event())
        await client.write_event(Synthesize(text=text).event())
        await client.write_event(SynthesizeStop().event())
        while True:
            event = await asyncio.wait_for(client.read_event(), 120)
            if event is None:
                return Result(first, time.monotonic() - started, 0, "connection closed")
            if event.type == "audio-chunk" and first is None:
                first = time.monotonic() - started
            elif event.type == "error":
                return Result(first, time.monotonic() - started, 0, str(event.data.get("text")))
            elif event.type == "synthesize-stopped":
                return Result(first, time.monotonic() - started, 1.0)
    except (OSError, asyncio.TimeoutError) as err:
        return Result(first, time.monotonic() - started, 0, repr(err))
    finally:
        await client.disconnect()


async def vanishing(port: int, text: str) -> Result:
    """A client that leaves after its first audio chunk."""
    started = time.monotonic()
    client = AsyncTcpClient("127.0.0.1", port)
    try:
        await client.connect()
        await client.write_event(Synthesize(text=text).event())
        while (event := await asyncio.wait_for(client.read_event(), 120)) is not None:
            if event.type == "audio-chunk":
                return Result(time.monotonic() - started, time.monotonic() - started, 1.0)
            if event.type == "error":
                return Result(None, time.monotonic() - started, 0, str(event.data.get("text")))
        return Result(None, time.monotonic() - started, 0, "connection closed")
    except (OSError, asyncio.TimeoutError) as err:
        return Result(None, time.monotonic() - started, 0, repr(err))
    finally:
        await client.disconnect()


async def client_loop(port: int, seed: int, count: int, kinds: dict[str, list[Result]]) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        kind = rng.choice(["zh", "zh", "en", "en", "stream", "repeat", "mixed", "vanish"])
        if kind == "zh":
            result = await request(port, rng.choice(ZH_SENTENCES), None)
        elif kind == "en":
            result = await request(port, rng.choice(EN_SENTENCES), "en_US-joe-medium")
        elif kind == "stream":
            result = await streamed(port, rng.choice(ZH_SENTENCES) + rng.choice(ZH_SENTENCES))
        elif kind == "repeat":
            result = await request(port, rng.choice(REPEATED), None)
        elif kind == "mixed":
            result = await request(port, rng.choice(MIXED), None)
        else:
            result = await vanishing(port, "".join(rng.sample(ZH_SENTENCES, 6)))
        kinds.setdefault(kind, []).append(result)


async def main_async(args: argparse.Namespace) -> None:
    port = free_port()
    server = await start("wyoming-indextts", [sys.executable, "-m", "wyoming_indextts", "--uri", f"tcp://127.0.0.1:{port}", *args.server_args], port)
    try:
        await request(port, ZH_SENTENCES[0], None)
        rss_cold = rss_mb(server.process.pid)
        # The soak judges growth (leaks), so it starts from the working set its own load needs:
        # one request brings up one worker on one voice, while the load runs --max-workers
        # workers on every voice, and ONNX Runtime's arena keeps that (bounded) working set.
        warm_up: dict[str, list[Result]] = {}
        await asyncio.wait_for(
            asyncio.gather(*(client_loop(port, -1 - seed, args.warm_up, warm_up) for seed in range(args.clients))),
            args.max_seconds,
        )
        warm_up_errors = sum(r.error is not None for rs in warm_up.values() for r in rs)
        rss_start = rss_mb(server.process.pid)
        kinds: dict[str, list[Result]] = {}
        started = time.monotonic()
        rss_rounds: list[float] = []
        for round_number in range(args.rounds):
            seeds = range(round_number * args.clients, (round_number + 1) * args.clients)
            await asyncio.wait_for(
                asyncio.gather(*(client_loop(port, seed, args.requests, kinds) for seed in seeds)), args.max_seconds
            )
            rss_rounds.append(rss_mb(server.process.pid))
        wall = time.monotonic() - started
        await asyncio.sleep(1.0)
        rss_end = rss_mb(server.process.pid)
        # An idle server returns ONNX Runtime's working memory (--release-after-idle, 10 s).
        await asyncio.sleep(args.idle_wait)
        rss_idle = rss_mb(server.process.pid)
        alive = server.process.poll() is None
    finally:
        peak = server.peak_rss_mb()
        server.stop()
    all_results = [r for rs in kinds.values() for r in rs]
    errors = [r for r in all_results if r.error is not None]
    lines = [
        f"## Soak ({args.rounds} x {args.clients} clients x {args.requests} mixed requests, loopback, flags: {' '.join(args.server_args) or 'defaults'})",
        "",
        "| request kind | count | errors | first audio p50 (ms) | p95 (ms) | p99 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for kind, results in sorted(kinds.items()):
        firsts = [r.first_audio * 1000 for r in results if r.first_audio is not None]
        lines.append(
            f"| {kind} | {len(results)} | {sum(r.error is not None for r in results)} | "
            f"{statistics.median(firsts) if firsts else float('nan'):.0f} | {percentile(firsts, 95):.0f} | {percentile(firsts, 99):.0f} |"
        )
    growth = (rss_end - rss_start) / rss_start * 100
    lines += [
        "",
        f"{len(all_results)} requests in {wall:.0f} s ({len(all_results) / wall:.1f}/s), {len(errors)} errors, server alive at the end: {alive}.",
        f"Server RSS after one request {rss_cold:.0f} MB; after the warm-up ({args.clients} clients x {args.warm_up} requests, "
        f"{warm_up_errors} errors) {rss_start:.0f} MB ({(rss_start - rss_cold) / rss_cold * 100:+.1f} %).",
        f"Over the soak: {rss_start:.0f} MB at the start, {rss_end:.0f} MB at the end (growth {growth:+.1f} %), peak {peak:.0f} MB.",
        f"After {args.idle_wait:.0f} s idle: {rss_idle:.0f} MB ({(rss_idle - rss_start) / rss_start * 100:+.1f} % against the start, "
        f"{(rss_idle - rss_cold) / rss_cold * 100:+.1f} % against one request).",
    ]
    if len(rss_rounds) > 1:
        lines.append("RSS after each round (MB): " + ", ".join(f"{r:.0f}" for r in rss_rounds) + ".")
    if errors:
        lines.append("Errors: " + "; ".join(sorted({str(e.error)[:80] for e in errors})))
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("soak", body, "python benchmarks/soak.py " + " ".join(sys.argv[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--warm-up", type=int, default=3, help="requests per client, before the start RSS (not counted)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole load, reporting RSS after each round")
    parser.add_argument("--max-seconds", type=float, default=1200, help="stop a round after this long")
    parser.add_argument("--idle-wait", type=float, default=12.0, help="seconds to wait after the load before the idle RSS")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("server_args", nargs="*", help="extra server flags after --")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
