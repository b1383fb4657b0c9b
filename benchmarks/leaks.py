"""Where does the server's memory grow? The soak's load against a server in this process,
with tracemalloc snapshots compared round by round (Python allocations only; ONNX Runtime's
arena and glibc's heaps show up in RSS, not here).

    python benchmarks/leaks.py                      # 4 rounds of 20 clients x 15 requests
    python benchmarks/leaks.py --rounds 6 --top 15 -- --cache-mb 0

Slow (tracemalloc traces every allocation); nothing is written to docs/.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tracemalloc
from pathlib import Path

from wyoming.server import AsyncServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import free_port, request  # noqa: E402
from soak import client_loop, rss_mb  # noqa: E402
from workload import ZH_SENTENCES  # noqa: E402

from wyoming_indextts.__main__ import build_parser, default_model_dirs  # noqa: E402
from wyoming_indextts.frontend import Frontend  # noqa: E402
from wyoming_indextts.memory import trim  # noqa: E402
from wyoming_indextts.server.wyoming import WyomingSettings, handler_factory  # noqa: E402
from wyoming_indextts.synthesis import SynthesisSettings, Synthesizer  # noqa: E402
from wyoming_indextts.voices import VoiceCatalog  # noqa: E402


async def main_async(args: argparse.Namespace) -> None:
    server_args = build_parser().parse_args(args.server_args)
    catalog = VoiceCatalog.discover(default_model_dirs(), max(1, server_args.threads), server_args.voice)
    synthesizer = Synthesizer(
        catalog,
        Frontend(),
        SynthesisSettings(max_workers=server_args.max_workers, cache_mb=max(0.0, server_args.cache_mb), max_queue=server_args.max_queue),
    )
    port = free_port()
    server = AsyncServer.from_uri(f"tcp://127.0.0.1:{port}")
    await server.start(handler_factory(synthesizer, WyomingSettings()))
    pid = os.getpid()
    try:
        await request(port, ZH_SENTENCES[0], None)
        tracemalloc.start(args.frames)
        previous = tracemalloc.take_snapshot()
        print(f"after warm-up: RSS {rss_mb(pid):.0f} MB", flush=True)
        for round_number in range(args.rounds):
            kinds: dict[str, list[object]] = {}
            seeds = range(round_number * args.clients, (round_number + 1) * args.clients)
            await asyncio.gather(*(client_loop(port, seed, args.requests, kinds) for seed in seeds))  # type: ignore[arg-type]
            trim()  # what glibc merely kept is not growth
            snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            diff = snapshot.compare_to(previous, "traceback" if args.frames > 1 else "lineno")
            grown = sum(d.size_diff for d in diff) / 1024
            print(f"round {round_number + 1}: RSS {rss_mb(pid):.0f} MB, Python heap {grown:+.0f} KiB", flush=True)
            for stat in diff[: args.top]:
                if stat.size_diff:
                    print(f"  {stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6d} blocks  {stat.traceback.format()[-1].strip()}")
            previous = snapshot
    finally:
        tracemalloc.stop()
        await server.stop()
        synthesizer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=15, help="requests per client per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--top", type=int, default=10, help="lines of growth shown per round")
    parser.add_argument("--frames", type=int, default=1, help="traceback depth kept by tracemalloc")
    parser.add_argument("server_args", nargs="*", help="server flags after --")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
