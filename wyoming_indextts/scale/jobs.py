"""Asynchronous jobs: ``POST /api/tts/jobs`` → RQ → ``wyoming-indextts worker`` → audio URLs.

The HTTP door (any replica) checks a request as it checks a synthesis, writes the job's
record and puts its id on an RQ queue; workers (any number, on any machine) take ids off it.
Why RQ and not arq (measured in benchmarks/queues.py, docs/SCALING.md): RQ notices a dead
worker by its missing heartbeat, so a killed worker's job is retried after seconds whatever
the job's length, while arq can only retry after the job's whole timeout; RQ's warm shutdown
(finish the job, then leave) is the worker's drain on SIGTERM; and its per-job overhead is
far below a synthesis.

What a client sees is our own record, ``indextts:job:<id>`` (a hash): state, progress,
attempt, audio URLs, error. RQ delivers at least once (a worker that was only slow, not dead,
may finish after its job was handed to another), so a job is *published* once: the first
attempt to finish sets the record in one atomic step (a Lua script) and any later attempt
throws its audio away. States: ``queued`` → ``started`` → ``finished`` | ``failed``; a job
whose worker died goes back to ``queued`` (``attempt`` counts the runs) until its retries
are spent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..synthesis import SynthesisError, Synthesizer, VoiceRequest
from .files import SharedAudioFiles
from .store import PREFIX, SharedStore

if TYPE_CHECKING:
    import redis
    from rq import Queue

_LOGGER = logging.getLogger(__name__)

QUEUE_NAME = "indextts"
JOB_TTL_SECONDS = 24 * 3600
"""A job record lives this long while queued or running (a finished one as long as its audio)."""
MAX_TEXTS = 100
"""Announcements in one batch job."""
RETRIES = 2
"""Runs after the first when a worker dies under a job (or the job raises unexpectedly)."""
FINISHED_COUNTER = f"{PREFIX}jobs:finished"
_RESTART_SECONDS = 5.0
"""A worker whose job loop ended on a Redis error starts it again after this long."""


def job_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def job_timeout(request: "JobRequest") -> int:
    """RQ's time limit for one run: generous (a loaded CPU), but a stuck run ends."""
    return int(120 + 0.5 * sum(len(t) for t in request.texts))


class QueueFull(Exception):
    def __init__(self, queued: int, limit: int, retry_after: int) -> None:
        super().__init__(f"The job queue is full ({queued} jobs waiting, limit {limit}); try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class JobRequest:
    """What a client asked for, already checked by the door."""

    texts: tuple[str, ...]
    format: str = "wav"
    voice: str | None = None
    language: str | None = None
    speaker: str | None = None
    speed: float | None = None
    batch: bool = False
    """Sent as ``texts`` (a list): the answer lists ``audio_urls``; else one ``audio_url``."""

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "texts": list(self.texts)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str | bytes) -> "JobRequest":
        fields = json.loads(data)
        return cls(**{**fields, "texts": tuple(fields["texts"])})


@dataclass(frozen=True)
class QueueStats:
    queued: int
    started: int
    oldest_queued_age: float
    """Seconds the job at the head of the queue has waited (0 when empty)."""
    finished: int
    """Jobs published as finished since the counter began (all workers)."""
    failed: int
    workers: int


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class JobQueue:
    """The door's side: put jobs on the queue, read their records, count them."""

    def __init__(self, store: SharedStore, max_queued: int, queue_name: str = QUEUE_NAME) -> None:
        from rq import Queue
        from rq.serializers import JSONSerializer  # never pickle: whoever can write Redis could run code

        self.store = store
        self.max_queued = max_queued
        self.queue: Queue = Queue(queue_name, connection=store.client, serializer=JSONSerializer)
        # For Retry-After: how fast workers have been finishing jobs lately.
        self._rate_samples: list[tuple[float, int]] = []

    async def enqueue(self, request: JobRequest) -> str:
        """The new job's id; raises :class:`QueueFull` or ``RedisUnavailable``."""
        job_id = uuid.uuid4().hex

        def put(client: "redis.Redis") -> int | None:
            queued = int(client.llen(self.queue.key))
            if queued >= self.max_queued:
                return queued
            from rq import Callback, Retry

            now = time.time()
            client.hset(job_key(job_id), mapping={
                "state": "queued", "created_at": now, "progress": 0, "attempt": 0, "request": request.to_json(),
                "texts": len(request.texts),
            })
            client.expire(job_key(job_id), JOB_TTL_SECONDS)
            self.queue.enqueue_call(
                "wyoming_indextts.scale.jobs.perform", args=(job_id,), job_id=job_id, timeout=job_timeout(request),
                retry=Retry(max=RETRIES), result_ttl=60, failure_ttl=JOB_TTL_SECONDS,
                on_failure=Callback("wyoming_indextts.scale.jobs.job_lost"),
            )
            return None

        queued = await self.store.call("job enqueue", put)
        if queued is not None:
            raise QueueFull(queued, self.max_queued, self._retry_after(queued))
        return job_id

    async def status(self, job_id: str) -> dict[str, Any] | None:
        """The record as a client sees it, or None for an unknown (or expired) job."""
        fields = await self.store.call("job status", lambda client: client.hgetall(job_key(job_id)))
        if not fields:
            return None
        record = {_decode(k): _decode(v) for k, v in fields.items()}
        request = JobRequest.from_json(record["request"])
        status: dict[str, Any] = {
            "id": job_id,
            "state": record["state"],
            "progress": round(float(record.get("progress", 0)), 3),
            "attempt": int(record.get("attempt", 0)),
            "created_at": float(record["created_at"]),
            "texts": len(request.texts),
        }
        for name in ("started_at", "finished_at"):
            if name in record:
                status[name] = float(record[name])
        if record["state"] == "finished":
            urls = json.loads(record["audio_urls"])
            status["audio_urls"] = urls
            if not request.batch:
                status["audio_url"] = urls[0]
            status["duration"] = float(record["duration"])
            status["format"] = request.format
        if record["state"] == "failed":
            status["error"] = record.get("error", "The job failed")
            status["code"] = record.get("code", "synthesis-failed")
        return status

    async def stats(self) -> QueueStats:
        def count(client: "redis.Redis") -> QueueStats:
            from rq import Worker

            # Plain reads: RQ's own counters clean registries up on the way, which is the
            # workers' job (it runs failure callbacks that need a main thread).
            head = client.lindex(self.queue.key, 0)
            created = client.hget(job_key(_decode(head)), "created_at") if head else None
            finished = client.get(FINISHED_COUNTER)
            return QueueStats(
                queued=int(client.llen(self.queue.key)),
                started=int(client.zcard(self.queue.started_job_registry.key)),
                oldest_queued_age=max(0.0, time.time() - float(created)) if created else 0.0,
                finished=int(finished or 0),
                failed=int(client.zcard(self.queue.failed_job_registry.key)),
                workers=Worker.count(queue=self.queue),
            )

        stats = await self.store.call("job stats", count)
        self._rate_samples = [(t, n) for t, n in self._rate_samples if time.monotonic() - t < 120] + [(time.monotonic(), stats.finished)]
        return stats

    def _retry_after(self, queued: int) -> int:
        """Seconds until the queue should be below its limit at the rate workers lately finished
        jobs (from the /health and /metrics samples); 30 when that rate is unknown."""
        if len(self._rate_samples) >= 2:
            (t0, n0), (t1, n1) = self._rate_samples[0], self._rate_samples[-1]
            if t1 > t0 and n1 > n0:
                rate = (n1 - n0) / (t1 - t0)
                return int(min(600, max(1, (queued - self.max_queued + 1) / rate)))
        return 30


# -- the worker's side ---------------------------------------------------------------------

_START = """
local state = redis.call('HGET', KEYS[1], 'state')
if (not state) or state == 'finished' or state == 'failed' then return false end
redis.call('HSET', KEYS[1], 'state', 'started', 'started_at', ARGV[1], 'progress', '0', 'worker', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'attempt', 1)
return redis.call('HGET', KEYS[1], 'request')
"""
# Publish once: only the first run to finish sets the result; a later one gets 0 and discards its audio.
_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if (not state) or state == 'finished' or state == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'finished_at', ARGV[3], 'progress', ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[2] == 'finished' then redis.call('INCR', KEYS[2]) end
return 1
"""

_REQUEUED = """
if redis.call('HGET', KEYS[1], 'state') == 'started' then redis.call('HSET', KEYS[1], 'state', 'queued') end
return 1
"""


@dataclass
class WorkerContext:
    """What a job needs from the worker process that runs it."""

    synthesizer: Synthesizer
    files: SharedAudioFiles
    store: SharedStore
    loop: asyncio.AbstractEventLoop
    """Synthesis runs on this loop (in a thread of its own); RQ's loop is the main thread."""
    name: str


_CONTEXT: ContextVar[WorkerContext] = ContextVar("wyoming_indextts_worker")


def perform(job_id: str) -> str:
    """RQ's entry point, in the worker's main thread; returns the job's final state."""
    context = _CONTEXT.get(None)
    if context is None:
        raise RuntimeError("Jobs of wyoming-indextts run in `wyoming-indextts worker --redis-url URL`")
    future = asyncio.run_coroutine_threadsafe(_perform(context, job_id), context.loop)
    try:
        return future.result()
    except BaseException:  # RQ's time limit or a cold shutdown: stop the synthesis too
        future.cancel()
        raise


def job_lost(job: Any, connection: "redis.Redis", *exc_info: Any) -> None:
    """RQ's failure callback: a run raised unexpectedly, hit its time limit, or its worker
    vanished (no heartbeat). With retries left RQ queues the job again; otherwise the client
    is told it failed."""
    reason = exc_info[0].__name__ if exc_info and exc_info[0] is not None else "unknown"
    if job.retries_left and job.retries_left > 0:
        _LOGGER.warning("Job %s lost its run (%s); it goes back on the queue", job.id, reason)
        connection.eval(_REQUEUED, 1, job_key(job.id))
        return
    _LOGGER.error("Job %s lost its run (%s) and has no retries left", job.id, reason)
    connection.eval(
        _FINISH, 2, job_key(job.id), FINISHED_COUNTER, JOB_TTL_SECONDS, "failed", time.time(), 0,
        "error", f"The job could not be finished in {RETRIES + 1} runs (last: {reason})", "code", "job-lost",
    )


async def _perform(context: WorkerContext, job_id: str) -> str:
    from ..server.http import FORMATS, encode_file

    store, synthesizer = context.store, context.synthesizer
    key = job_key(job_id)
    raw = await store.call("job start", lambda client: client.eval(_START, 1, key, time.time(), context.name))
    if raw is None:
        _LOGGER.info("Job %s is already done or expired; nothing to do", job_id)
        return "skipped"
    request = JobRequest.from_json(raw)
    reporter = _ProgressReporter(store, key)
    names: list[str] = []
    duration = 0.0
    try:
        voice = synthesizer.resolve_voice(VoiceRequest(request.voice, request.language, request.speaker))
        for index, text in enumerate(request.texts):
            pieces: list[np.ndarray] = []

            def progress(done: int, total: int, index: int = index) -> None:
                reporter.report((index + done / total) / len(request.texts))

            with synthesizer.admit():
                async for chunk in synthesizer.stream(synthesizer.accept_text(text), voice, request.speed, progress=progress):
                    pieces.append(chunk.samples)
            audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
            duration += len(audio) / voice.sample_rate
            data = await asyncio.to_thread(encode_file, audio, voice.sample_rate, request.format)
            name = f"{uuid.uuid4().hex}.{FORMATS[request.format][1]}"
            await context.files.save(name, data)
            names.append(name)
    except SynthesisError as err:
        await _finish(store, key, "failed", "error", str(err), "code", err.code)
        _LOGGER.warning("Job %s failed: %s (%s)", job_id, err, err.code)
        return "failed"
    urls = json.dumps([f"/static/audio/{name}" for name in names])
    published = await _finish(store, key, "finished", "audio_urls", urls, "duration", round(duration, 3),
                              ttl=int(context.files.max_age_ms / 1000))
    if not published:
        # Another run of this job (its worker was presumed dead) finished first.
        _LOGGER.warning("Job %s was already finished by another run; this run's audio is discarded", job_id)
        await asyncio.to_thread(context.files.delete_now, *names)
        return "duplicate"
    _LOGGER.info("Job %s finished: %d file(s), %.1f s of audio", job_id, len(names), duration)
    return "finished"


async def _finish(store: SharedStore, key: str, state: str, *fields: object, ttl: int = JOB_TTL_SECONDS) -> bool:
    published = await store.call(
        "job finish", lambda client: client.eval(_FINISH, 2, key, FINISHED_COUNTER, ttl, state, time.time(), 1, *fields)
    )
    return bool(published)


class _ProgressReporter:
    """Progress into the job record at most twice a second, without waiting for Redis."""

    def __init__(self, store: SharedStore, key: str, interval: float = 0.5) -> None:
        self._store, self._key, self._interval = store, key, interval
        self._last = 0.0

    def report(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last < self._interval and fraction < 1:
            return
        self._last = now
        value = round(min(1.0, fraction), 3)
        self._store.submit("job progress", lambda client: client.hset(self._key, "progress", value))


def make_worker_class() -> type:
    """RQ's in-process worker with a heartbeat during jobs (built on demand: rq is optional).

    RQ's forking worker would run each job in a fork of a process whose ONNX Runtime thread
    pools do not survive ``fork``; its ``SimpleWorker`` runs jobs in-process but beats only
    once per job, so a dead worker's job would wait out the job's whole time limit. This one
    beats every ``job_monitoring_interval`` from a side thread while the job runs, and lets the
    beat lapse after two missed intervals, so another worker retries the job within seconds.
    """
    from rq import SimpleWorker
    from rq.worker import WorkerStatus

    class SynthesisWorker(SimpleWorker):  # type: ignore[misc]
        stopping = False
        """SIGTERM (or Ctrl-C) asked it to stop, as opposed to its loop ending on a Redis error."""

        def request_stop(self, signum: int, frame: Any) -> None:
            self.stopping = True
            super().request_stop(signum, frame)

        def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
            return int(self.job_monitoring_interval * 2 + 2)

        def execute_job(self, job: Any, queue: Any) -> None:
            execution = self.prepare_execution(job)
            stop = threading.Event()

            def beat() -> None:
                while not stop.wait(self.job_monitoring_interval):
                    try:
                        self.maintain_heartbeats(job, execution)
                    except Exception as err:  # noqa: BLE001 — Redis hiccup: the next beat may pass
                        _LOGGER.warning("Heartbeat for job %s failed: %s", job.id, err)

            beater = threading.Thread(target=beat, name="rq-heartbeat", daemon=True)
            beater.start()
            try:
                self.perform_job(job, queue, execution)
            finally:
                stop.set()
                beater.join()
            self.set_state(WorkerStatus.IDLE)

    return SynthesisWorker


def worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}"


def run_worker(context: WorkerContext, redis_url: str, heartbeat: float, queue_name: str = QUEUE_NAME,
               on_ready: Callable[[], None] | None = None) -> None:
    """Take jobs until SIGTERM (finish the job in hand, then return) or a second SIGTERM."""
    import redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    # RQ sets long socket timeouts on the connection it is given: not the store's short-timeout one.
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
    from rq.exceptions import StopRequested

    interval = max(1, int(round(heartbeat)))
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("rq.worker").setLevel(logging.WARNING)  # its maintenance passes log twice every few seconds
    worker_class = make_worker_class()
    token = _CONTEXT.set(context)
    try:
        for run in itertools.count():
            worker = worker_class(
                [queue], connection=connection, serializer=JSONSerializer,
                name=context.name if not run else f"{context.name}-{run}",  # the old name may still be registered
                job_monitoring_interval=interval,
                maintenance_interval=max(2, interval),  # how often someone looks for jobs of dead workers
                worker_ttl=max(20, interval * 3 + 15),  # an idle worker wakes this often (minus 15 s) to do that
            )
            if on_ready is not None and not run:
                on_ready()
            try:
                worker.work(logging_level=logging.getLevelName(logging.getLogger("rq.worker").getEffectiveLevel()))
            except (redis.RedisError, OSError) as err:  # Redis gone while the loop started
                _LOGGER.warning("Cannot take jobs: %s", err)
            if worker.stopping:
                return
            # RQ's loop ends on a Redis error it does not retry (e.g. during maintenance): the
            # voices stay loaded and the worker takes jobs again once Redis answers.
            _LOGGER.warning("The job loop stopped (is Redis reachable?); taking jobs again in %g s", _RESTART_SECONDS)
            try:
                time.sleep(_RESTART_SECONDS)
            except StopRequested:  # SIGTERM while waiting: RQ's handler is still installed
                return
    finally:
        _CONTEXT.reset(token)
        connection.close()
