"""Which Redis-backed queue carries the asynchronous jobs: RQ or arq, measured side by side.

    pip install arq            # only for this comparison; the server uses RQ
    python benchmarks/queues.py [--jobs 300] [--rounds 3]

Against one local redis-server, one worker at a time each (as a synthesis worker runs one
job at a time), alternating the two libraries each round:

* overhead: empty jobs a single worker finishes per second, with a full queue;
* enqueue: time to put one job on the queue from asyncio (RQ through a thread, as the HTTP door does);
* recovery: a worker is killed (SIGKILL) while it runs a 10 s job; how long until another
  worker starts that job again. RQ runs with the server's heartbeat worker (1 s beats);
  arq cannot know a worker died until the job's time limit (here 20 s) plus its 10 s margin
  has passed, so its recovery grows with the longest job one allows.

Results go to docs/SCALING.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

BENCH_QUEUE = "bench"
STARTS = "bench:starts"
LONG_JOB_SECONDS = 10.0
ARQ_JOB_TIMEOUT = 20


# -- job functions (imported by the workers as queues.NAME) ----------------------------------


def noop() -> None:
    return None


def sleepy(url: str) -> None:
    redis.Redis.from_url(url).rpush(STARTS, time.time())
    time.sleep(LONG_JOB_SECONDS)


async def arq_noop(ctx: dict) -> None:
    return None


async def arq_sleepy(ctx: dict, url: str) -> None:
    await ctx["redis"].rpush(STARTS, time.time())
    await asyncio.sleep(LONG_JOB_SECONDS)


# -- workers -------------------------------------------------------------------------------


def run_rq_worker(url: str) -> None:
    from rq import Queue
    from rq.serializers import JSONSerializer

    from wyoming_indextts.scale.jobs import make_worker_class

    connection = redis.Redis.from_url(url)
    queue = Queue(BENCH_QUEUE, connection=connection, serializer=JSONSerializer)
    worker = make_worker_class()([queue], connection=connection, serializer=JSONSerializer,
                                 job_monitoring_interval=1, maintenance_interval=2, worker_ttl=20)
    worker.work(logging_level="WARNING")


def run_arq_worker(url: str) -> None:
    from arq.connections import RedisSettings
    from arq.worker import run_worker

    class Settings:
        functions = [arq_noop, arq_sleepy]
        redis_settings = RedisSettings.from_dsn(url)
        queue_name = BENCH_QUEUE
        max_jobs = 1
        poll_delay = 0.01  # default 0.5 s would cap one-job-at-a-time workers at 2 jobs/s
        job_timeout = ARQ_JOB_TIMEOUT

    run_worker(Settings)  # type: ignore[arg-type]


def start_worker(kind: str, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--worker", kind, "--redis-url", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- measurements --------------------------------------------------------------------------


async def enqueue(kind: str, url: str, count: int, function: str, *args: str) -> list[float]:
    """Put ``count`` jobs on the queue; returns each enqueue's seconds."""
    times = []
    if kind == "rq":
        from rq import Queue, Retry
        from rq.serializers import JSONSerializer

        queue = Queue(BENCH_QUEUE, connection=redis.Redis.from_url(url), serializer=JSONSerializer)
        for _ in range(count):
            started = time.perf_counter()
            await asyncio.to_thread(queue.enqueue_call, f"queues.{function}", args=args, result_ttl=60, retry=Retry(max=2))
            times.append(time.perf_counter() - started)
    else:
        from arq import create_pool
        from arq.connections import RedisSettings

        pool = await create_pool(RedisSettings.from_dsn(url), default_queue_name=BENCH_QUEUE)
        for _ in range(count):
            started = time.perf_counter()
            await pool.enqueue_job(f"arq_{function}", *args)
            times.append(time.perf_counter() - started)
        await pool.aclose()
    return times


def drained(kind: str, client: redis.Redis) -> bool:
    if kind == "rq":
        return client.llen(f"rq:queue:{BENCH_QUEUE}") == 0 and client.zcard(f"rq:wip:{BENCH_QUEUE}") == 0
    return client.zcard(BENCH_QUEUE) == 0


def overhead(kind: str, url: str, jobs: int) -> tuple[float, float]:
    """(jobs per second for one worker, median enqueue ms)."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    enqueue_times = asyncio.run(enqueue(kind, url, jobs, "noop"))
    worker = start_worker(kind, url)
    try:
        while not (client.llen(f"rq:queue:{BENCH_QUEUE}") < jobs if kind == "rq" else client.zcard(BENCH_QUEUE) < jobs):
            time.sleep(0.001)  # the first job was taken: the worker is up
        started = time.monotonic()
        while not drained(kind, client):
            time.sleep(0.005)
        rate = (jobs - 1) / (time.monotonic() - started)
    finally:
        worker.kill()
        worker.wait()
    return rate, statistics.median(enqueue_times) * 1000


def recovery(kind: str, url: str) -> float:
    """Seconds from killing the worker that runs a job to another worker starting it again."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    first = start_worker(kind, url)
    asyncio.run(enqueue(kind, url, 1, "sleepy", url))
    while client.llen(STARTS) < 1:
        time.sleep(0.01)
    second = start_worker(kind, url)
    time.sleep(2.0)  # the second worker is up and waiting
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = time.time()
    try:
        deadline = time.monotonic() + 120
        while client.llen(STARTS) < 2:
            if time.monotonic() > deadline:
                return float("inf")
            time.sleep(0.05)
        return float(client.lindex(STARTS, 1)) - killed
    finally:
        second.kill()
        second.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=("rq", "arq"))
    parser.add_argument("--redis-url")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.worker == "rq":
        return run_rq_worker(args.redis_url)
    if args.worker == "arq":
        return run_arq_worker(args.redis_url)

    import importlib.metadata

    from report import write_section
    from scale_cluster import start_redis

    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"queues-bench-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    server = start_redis(folder)
    results: dict[str, dict[str, list[float]]] = {k: {"rate": [], "enqueue": [], "recovery": []} for k in ("rq", "arq")}
    try:
        for round_ in range(args.rounds):
            for kind in ("rq", "arq") if round_ % 2 == 0 else ("arq", "rq"):
                rate, enqueue_ms = overhead(kind, server.url, args.jobs)
                results[kind]["rate"].append(rate)
                results[kind]["enqueue"].append(enqueue_ms)
                results[kind]["recovery"].append(recovery(kind, server.url))
                print(kind, f"{rate:.0f} jobs/s", f"enqueue {enqueue_ms:.2f} ms", f"recovery {results[kind]['recovery'][-1]:.1f} s", flush=True)
    finally:
        server.stop()
    versions = {k: importlib.metadata.version(k) for k in ("rq", "arq")}
    rows = [
        f"| {kind} {versions[kind]} | {statistics.median(r['rate']):.0f} ({', '.join(f'{x:.0f}' for x in r['rate'])}) "
        f"| {statistics.median(r['enqueue']):.2f} | {statistics.median(r['recovery']):.1f} ({', '.join(f'{x:.1f}' for x in r['recovery'])}) |"
        for kind, r in results.items()
    ]
    body = "\n".join([
        "## Choosing the job queue: RQ or arq",
        "",
        f"One worker, one job at a time; {args.jobs} empty jobs for the overhead; a worker killed under a"
        f" {LONG_JOB_SECONDS:g} s job for the recovery (arq's job time limit {ARQ_JOB_TIMEOUT} s). Medians of {args.rounds} rounds, alternating.",
        "",
        "| queue | empty jobs/s, one worker | enqueue from asyncio (ms) | killed worker's job restarted after (s) |",
        "|---|---|---|---|",
        *rows,
    ])
    print(body)
    if not args.no_write:
        write_section("queue-choice", body, "python benchmarks/queues.py", Path(__file__).resolve().parent.parent / "docs" / "SCALING.md")


if __name__ == "__main__":
    main()
