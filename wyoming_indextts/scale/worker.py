"""``wyoming-indextts worker --redis-url URL``: load the voices once, then take jobs off the queue.

It takes the server's voice and synthesis flags (``--voice``, ``--data-dir``, ``--threads``,
``--cache-mb``, ``--lexicon``…; the listening ones are not used) and shares the phrase cache
and audio files with the replicas. SIGTERM lets the job in hand finish, then the worker
leaves (RQ's warm shutdown; a second SIGTERM stops at once and the job is retried by another
worker). Run as many as the cores allow, on any machine that reaches Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading
import time

from .. import cli
from .jobs import WorkerContext, run_worker, worker_name

_LOGGER = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    from ..__main__ import build_parser as server_parser

    parser = server_parser()
    parser.prog = "wyoming-indextts worker"
    parser.description = "Take asynchronous synthesis jobs off the Redis queue (POST /api/tts/jobs on any replica)"
    parser.add_argument("--heartbeat", type=cli.seconds, default=5.0, metavar="SECONDS",
                        help="how often a busy worker tells Redis it is alive; a job whose worker missed two beats "
                        "is retried by another worker (default: %(default)s)")
    return parser


def run(argv: list[str]) -> None:
    from ..__main__ import load_synthesizer

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.redis_url:
        parser.error("the worker needs --redis-url (the queue it takes jobs from)")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    # Synthesis is asynchronous (worker threads, the shared cache); RQ is not. The loop gets a
    # thread of its own and RQ's work loop (and its signal handlers) keep the main thread.
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="synthesis-loop", daemon=True)
    thread.start()

    async def load() -> object:
        try:
            return await load_synthesizer(parser, args)
        except SystemExit as exit:  # a bad flag: raised here, not inside the loop's thread
            return exit

    loaded = asyncio.run_coroutine_threadsafe(load(), loop).result()
    if isinstance(loaded, SystemExit):
        raise loaded
    synthesizer, store = loaded  # type: ignore[misc]
    assert store is not None
    from .files import SharedAudioFiles

    context = WorkerContext(synthesizer, SharedAudioFiles(store, max(1.0, args.http_max_age)), store, loop, worker_name())
    try:
        run_worker(
            context, args.redis_url, args.heartbeat or 5.0,
            on_ready=lambda: _LOGGER.info("Worker %s ready in %.2f s; taking jobs", context.name, time.monotonic() - started),
        )
    finally:
        _LOGGER.info("Worker %s stopped", context.name)
        synthesizer.close()
        store.close()
        loop.call_soon_threadsafe(loop.stop)
