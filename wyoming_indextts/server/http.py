"""HTTP door: the article's API and a small web page, on the same Synthesizer as Wyoming.

    POST /api/tts/synthesize   {"text", "voice", "speaker", "language", "speed", "format"}
                               → {"audio_url", "duration", "sample_rate"}, or with
                                 ``Accept: audio/*`` / ``?stream=1`` the audio itself, streamed
    GET  /api/voices           voices that loaded
    GET  /health               status, uptime, voices, queue, cache, fallback counts
    GET  /metrics              Prometheus text format
    GET  /                     web page (and /favicon.svg)
    GET  /static/audio/NAME    files made by synthesize (names generated, never from the request)
    POST /api/tts/jobs         {"text" | "texts", "voice", ...} → 202 {"id", "state", "status_url"} at once
                               (with --redis-url; a worker synthesizes it; 503 + Retry-After when the queue is full)
    GET  /api/tts/jobs/ID      state, progress, attempt, and when finished the audio URL(s)

With a token (``--http-token``), every path but the page and its icon needs
``Authorization: Bearer TOKEN``: none → 401, a wrong one → 403. CORS headers only with ``--http-cors``.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import logging
import re
import struct
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .. import __version__
from ..audio import float_to_pcm16, resample
from ..synthesis import (
    BadFieldError, BadSpeedError, BusyError, EmptyTextError, ResolvedVoice, SynthesisError, Synthesizer, TextTooLongError,
    UnknownVoiceError, VoiceRequest, check_speed,
)
from ..scale.jobs import MAX_TEXTS, JobRequest, QueueFull, QueueStats
from ..scale.store import RedisUnavailable

if TYPE_CHECKING:
    from ..scale.files import SharedAudioFiles
    from ..scale.jobs import JobQueue
    from ..scale.store import SharedStore

_LOGGER = logging.getLogger(__name__)

FORMATS = {
    "wav": ("audio/wav", "wav"),
    "pcm": ("audio/L16", "pcm"),
    "ogg": ("audio/ogg", "ogg"),
    "mp3": ("audio/mpeg", "mp3"),
}
STREAMABLE = {"wav", "pcm"}
_AUDIO_NAME = re.compile(r"^[0-9a-f]{32}\.(wav|pcm|ogg|mp3)$")
# The page and its icon are static and reveal nothing: they load without the token (the page asks for it).
_OPEN_PATHS = frozenset({"/", "/favicon.svg", "/favicon.ico"})
# Opus only runs at these rates; other voices are resampled for it.
_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    """Shared secret required as ``Authorization: Bearer`` (None: no authentication)."""
    cors_origin: str | None = None
    audio_dir: Path | None = None
    """Where synthesized files are kept; a private temporary folder when None."""
    max_files: int = 200
    max_age: float = 3600.0
    max_body_bytes: int = 64 * 1024
    max_jobs_queued: int = 100
    """Asynchronous jobs that may wait (with Redis); beyond, new ones get 503 + Retry-After."""


class RequestError(Exception):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


_STATUS = {
    EmptyTextError: 400, BadFieldError: 400, BadSpeedError: 400, UnknownVoiceError: 404, TextTooLongError: 413, BusyError: 503,
}


class _Metrics:
    """A registry per server, not prometheus_client's global one, so tests and servers don't collide."""

    def __init__(self, synthesizer: Synthesizer) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("indextts_http_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry)
        self.synthesis_seconds = Histogram("indextts_synthesis_seconds", "Time to synthesize a whole request", registry=self.registry)
        self.first_audio_seconds = Histogram(
            "indextts_first_audio_seconds", "Time to the first audio of a request",
            buckets=(0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5), registry=self.registry,
        )
        Gauge("indextts_voices_loaded", "Voices loaded", registry=self.registry).set_function(lambda: len(synthesizer.catalog.engines))
        Gauge("indextts_queue_length", "Requests waiting for a worker", registry=self.registry).set_function(lambda: synthesizer.queue_length)
        Gauge("indextts_cache_hit_rate", "Phrase cache hit rate", registry=self.registry).set_function(lambda: synthesizer.cache_stats().hit_rate)


class _SharedMetrics:
    """Redis and the job queue, from the last snapshot (a scrape never waits on Redis)."""

    def __init__(self, door: "HttpDoor") -> None:
        self._door = door

    def collect(self) -> Any:
        door = self._door
        assert door.store is not None
        store = door.store.stats()
        yield GaugeMetricFamily("indextts_redis_up", "1 while Redis answers, 0 while this replica serves alone", value=int(store.up))
        yield CounterMetricFamily("indextts_redis_errors", "Redis calls that failed (each fell back to local)", value=store.errors)
        yield CounterMetricFamily("indextts_redis_outages", "Times Redis stopped answering", value=store.outages)
        cache = door.synthesizer.cache_stats()
        yield CounterMetricFamily("indextts_cache_shared_hits", "Phrase cache hits answered by Redis (another replica's audio)", value=cache.shared_hits)
        jobs = door.job_stats
        if jobs is not None:
            yield GaugeMetricFamily("indextts_jobs_queued", "Asynchronous jobs waiting for a worker", value=jobs.queued)
            yield GaugeMetricFamily("indextts_jobs_started", "Asynchronous jobs being synthesized", value=jobs.started)
            yield GaugeMetricFamily("indextts_jobs_oldest_age_seconds", "How long the next job in the queue has waited", value=jobs.oldest_queued_age)
            yield CounterMetricFamily("indextts_jobs_finished", "Asynchronous jobs finished (all workers)", value=jobs.finished)
            yield GaugeMetricFamily("indextts_jobs_failed", "Asynchronous jobs that failed and are still on record", value=jobs.failed)
            yield GaugeMetricFamily("indextts_job_workers", "Workers registered on the job queue", value=jobs.workers)


class HttpDoor:
    def __init__(self, synthesizer: Synthesizer, settings: HttpSettings, store: "SharedStore | None" = None) -> None:
        self._synthesizer = synthesizer
        self._settings = settings
        # With Redis (--redis-url): files any replica serves, and the job queue.
        self.store = store
        self._files: SharedAudioFiles | None = None
        self._jobs: JobQueue | None = None
        self.job_stats: QueueStats | None = None
        self.draining = False
        """Set on SIGTERM with --drain-seconds: /health answers 503 so balancers stop sending work."""
        self._started = time.monotonic()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if settings.audio_dir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="indextts-audio-")
            self._audio_dir = Path(self._tempdir.name)
        else:
            self._audio_dir = settings.audio_dir
            self._audio_dir.mkdir(parents=True, exist_ok=True)
        self._metrics = _Metrics(synthesizer)
        if store is not None:
            from ..scale.files import SharedAudioFiles
            from ..scale.jobs import JobQueue

            self._files = SharedAudioFiles(store, settings.max_age)
            self._jobs = JobQueue(store, settings.max_jobs_queued)
            self._metrics.registry.register(_SharedMetrics(self))
        self._runner: web.AppRunner | None = None
        self._cleaner: asyncio.Task[None] | None = None
        self._job_watch: asyncio.Task[None] | None = None

    @property
    def synthesizer(self) -> Synthesizer:
        return self._synthesizer

    # -- lifecycle ---------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._settings.max_body_bytes, middlewares=[self._middleware])
        app.router.add_get("/", self._index)
        app.router.add_get("/favicon.svg", self._favicon)
        app.router.add_get("/favicon.ico", self._favicon)  # asked for by browsers that ignore the page's <link>
        app.router.add_get("/api/voices", self._voices)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics_view)
        app.router.add_post("/api/tts/synthesize", self._synthesize)
        app.router.add_get("/static/audio/{name}", self._audio_file)
        app.router.add_post("/api/tts/jobs", self._submit_job)
        app.router.add_get("/api/tts/jobs/{id}", self._job_status)
        if self._settings.cors_origin:
            app.router.add_route("OPTIONS", "/{tail:.*}", self._preflight)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._settings.host, self._settings.port).start()
        self._cleaner = asyncio.create_task(self._clean_periodically())
        if self._jobs is not None:
            self._job_watch = asyncio.create_task(self._watch_jobs())
        _LOGGER.info("HTTP API on http://%s:%s/", self._settings.host, self._settings.port)

    async def stop_listening(self) -> None:
        """No new connections; those open are served to the end of their requests."""
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()

    async def stop(self) -> None:
        for task in (self._cleaner, self._job_watch):
            if task is not None:
                task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._tempdir is not None:
            self._tempdir.cleanup()

    # -- plumbing ----------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        endpoint = request.match_info.route.resource.canonical if request.match_info.route.resource else "unknown"
        try:
            self._authorize(request)
            response = await handler(request)
        except RequestError as err:
            response = web.json_response({"error": str(err), "code": err.code}, status=err.status)
            if err.status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="wyoming-indextts"'

        except web.HTTPRequestEntityTooLarge:
            response = web.json_response({"error": "Request body too large", "code": "body-too-large"}, status=413)
        except web.HTTPException as err:
            response = web.json_response({"error": err.reason, "code": "http-error"}, status=err.status)
        except Exception:  # noqa: BLE001 — never leak a stack trace to the client
            _LOGGER.exception("Unexpected error on %s", request.path)
            response = web.json_response({"error": "Internal server error; see the server log", "code": "internal-error"}, status=500)
        if self._settings.cors_origin and not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = self._settings.cors_origin
            response.headers["Vary"] = "Origin"
        if self.draining and not response.prepared:
            response.headers["Connection"] = "close"  # the client's next request goes to another replica
        self._metrics.requests.labels(endpoint, str(response.status)).inc()
        return response

    def _authorize(self, request: web.Request) -> None:
        # CORS preflights carry no credentials by design; they only get the CORS headers.
        if self._settings.token is None or request.path in _OPEN_PATHS or request.method == "OPTIONS":
            return
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise RequestError(401, "This server needs its access token: send 'Authorization: Bearer TOKEN'", "unauthorized")
        if not hmac.compare_digest(credentials.strip().encode("utf-8"), self._settings.token.encode("utf-8")):
            raise RequestError(403, "Wrong access token", "forbidden")

    async def _preflight(self, request: web.Request) -> web.Response:
        return web.Response(
            status=204,
            headers={"Access-Control-Allow-Methods": "GET, POST, OPTIONS", "Access-Control-Allow-Headers": "Content-Type, Accept, Authorization"},
        )

    # -- pages and JSON ----------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.Response:
        page = resources.files("wyoming_indextts").joinpath("web/index.html").read_text(encoding="utf-8")
        return web.Response(text=page, content_type="text/html")

    async def _favicon(self, request: web.Request) -> web.Response:
        icon = resources.files("wyoming_indextts").joinpath("web/favicon.svg").read_bytes()
        return web.Response(body=icon, content_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    async def _voices(self, request: web.Request) -> web.Response:
        voices = [
            {
                "name": e.info.name,
                "languages": list(e.info.languages),
                "speakers": [{"name": s.name, "id": s.id} for s in e.info.speakers],
                "engine": e.info.engine,
                "sample_rate": e.sample_rate,
                "description": e.info.description,
                "default": e.info.name == self._synthesizer.catalog.default_voice,
            }
            for e in self._synthesizer.catalog.engines
        ]
        return web.json_response({"voices": voices})

    async def _health(self, request: web.Request) -> web.Response:
        cache = self._synthesizer.cache_stats()
        failures = {
            name: {"errors": f.errors, "timeouts": f.timeouts, "truncated": f.truncated, "last_error": f.last_error}
            for name, f in self._synthesizer.failure_counts().items()
        }
        status = "ok" if self._synthesizer.catalog.engines else "no-voices"
        if self.draining:
            status = "draining"
        shared: dict[str, Any] = {}
        if self.store is not None:
            store = self.store.stats()
            shared["redis"] = {"up": store.up, "errors": store.errors, "outages": store.outages}
            shared["cache"] = {"shared_hits": cache.shared_hits}
            await self._refresh_job_stats()
            jobs = self.job_stats
            shared["jobs"] = {"available": False} if jobs is None or not store.up else {
                "available": True, "queued": jobs.queued, "started": jobs.started, "oldest_queued_age": round(jobs.oldest_queued_age, 1),
                "finished": jobs.finished, "failed": jobs.failed, "workers": jobs.workers, "limit": self._settings.max_jobs_queued,
            }
        body: dict[str, Any] = {
            "status": status,
            "version": __version__,
            "uptime": round(time.monotonic() - self._started, 1),
            "voices_loaded": [e.info.name for e in self._synthesizer.catalog.engines],
            "voices_failed": [{"name": f.name, "reason": f.reason} for f in self._synthesizer.catalog.failures],
            "active_requests": self._synthesizer.active_requests,
            "queue_length": self._synthesizer.queue_length,
            "cache": {"hit_rate": round(cache.hit_rate, 4), "hits": cache.hits, "misses": cache.misses, "entries": cache.entries, "bytes": cache.bytes},
            "fallbacks": failures,
        }
        for section, values in shared.items():
            body[section] = {**body.get(section, {}), **values}
        # Balancers take a replica out on anything but 200: no voice, or going away.
        return web.json_response(body, status=200 if status == "ok" else 503)

    async def _metrics_view(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self._metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # -- synthesis ---------------------------------------------------------------------

    async def _synthesize(self, request: web.Request) -> web.StreamResponse:
        body, audio_format = await _read_request(request)
        try:
            # The same rules, messages and codes as the Wyoming door and the command line.
            text = self._synthesizer.accept_text(body.get("text"))
            speed = None if body.get("speed") is None else check_speed(body["speed"])
            voice = self._synthesizer.resolve_voice(VoiceRequest(body.get("voice") or None, body.get("language"), body.get("speaker")))
        except SynthesisError as err:
            raise RequestError(_STATUS.get(type(err), 500), str(err), err.code) from None
        stream = request.query.get("stream") in ("1", "true") or request.headers.get("Accept", "").startswith("audio/")
        try:
            with self._synthesizer.admit():
                if stream:
                    if audio_format not in STREAMABLE:
                        raise RequestError(400, f"Streaming is available for {', '.join(sorted(STREAMABLE))}", "bad-format")
                    return await self._stream(request, text, voice, speed, audio_format)
                return await self._to_file(text, voice, speed, audio_format)
        except SynthesisError as err:
            raise RequestError(_STATUS.get(type(err), 500), str(err), err.code) from None

    async def _stream(self, request: web.Request, text: str, voice: ResolvedVoice, speed: float | None, audio_format: str) -> web.StreamResponse:
        rate = voice.sample_rate
        response = web.StreamResponse(headers={"Content-Type": FORMATS[audio_format][0], "X-Sample-Rate": str(rate)})
        started = time.monotonic()
        first = True
        async for chunk in self._synthesizer.stream(text, voice, speed):
            if first:
                # Errors before here are still JSON; after the headers are out, only a cut stream is possible.
                if self._settings.cors_origin:
                    response.headers["Access-Control-Allow-Origin"] = self._settings.cors_origin
                await response.prepare(request)
                if audio_format == "wav":
                    await response.write(_streaming_wav_header(rate))
                self._metrics.first_audio_seconds.observe(time.monotonic() - started)
                first = False
            await response.write(float_to_pcm16(chunk.samples))
        if first:
            await response.prepare(request)
            if audio_format == "wav":
                await response.write(_streaming_wav_header(rate))
        await response.write_eof()
        self._metrics.synthesis_seconds.observe(time.monotonic() - started)
        return response

    async def _to_file(self, text: str, voice: ResolvedVoice, speed: float | None, audio_format: str) -> web.Response:
        started = time.monotonic()
        pieces: list[np.ndarray] = []
        async for chunk in self._synthesizer.stream(text, voice, speed):
            if not pieces:
                self._metrics.first_audio_seconds.observe(time.monotonic() - started)
            pieces.append(chunk.samples)
        self._metrics.synthesis_seconds.observe(time.monotonic() - started)
        rate = voice.sample_rate
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        name = f"{uuid.uuid4().hex}.{FORMATS[audio_format][1]}"
        data = await asyncio.to_thread(encode_file, audio, rate, audio_format)
        await self._save_audio(name, data)
        return web.json_response({"audio_url": f"/static/audio/{name}", "duration": round(len(audio) / rate, 3), "sample_rate": rate, "format": audio_format})

    async def _audio_file(self, request: web.Request) -> web.FileResponse:
        name = request.match_info["name"]
        if not _AUDIO_NAME.match(name):  # generated names only: no path can be smuggled in
            raise RequestError(404, "No such audio file", "not-found")
        content_type = FORMATS[name.rsplit(".", 1)[1]][0]
        path = self._audio_dir / name
        if path.is_file():
            return web.FileResponse(path, headers={"Content-Type": content_type})
        if self._files is not None:  # made by another replica or a worker
            try:
                data = await self._files.load(name)
            except RedisUnavailable:
                raise RequestError(503, "Audio files are shared through Redis, which does not answer; try again shortly", "redis-unavailable") from None
            if data is not None:
                return web.Response(body=data, headers={"Content-Type": content_type})
        raise RequestError(404, "No such audio file (files are removed after a while)", "not-found")

    async def _save_audio(self, name: str, data: bytes) -> None:
        """Into Redis, where every replica finds it; on this replica's disk only if Redis fails."""
        if self._files is not None:
            try:
                await self._files.save(name, data)
                return
            except RedisUnavailable:
                _LOGGER.warning("Audio file %s kept on this replica only (Redis does not answer)", name)
        await asyncio.to_thread((self._audio_dir / name).write_bytes, data)
        await asyncio.to_thread(self._clean)

    # -- asynchronous jobs -------------------------------------------------------------

    async def _submit_job(self, request: web.Request) -> web.Response:
        if self._jobs is None:
            raise RequestError(404, "Asynchronous jobs need a queue: start the server with --redis-url", "jobs-off")
        if self.draining:
            raise RequestError(503, "This replica is shutting down; send the job to another", "draining")
        body, audio_format = await _read_request(request)
        batch = "texts" in body
        texts = body["texts"] if batch else [body.get("text")]
        if not isinstance(texts, list) or not 1 <= len(texts) <= MAX_TEXTS:
            raise RequestError(400, f"texts must be a list of 1 to {MAX_TEXTS} texts", "bad-field")
        try:
            job = JobRequest(
                texts=tuple(self._synthesizer.accept_text(text) for text in texts),
                format=audio_format,
                speed=None if body.get("speed") is None else check_speed(body["speed"]),
                voice=body.get("voice") or None, language=body.get("language"), speaker=body.get("speaker"), batch=batch,
            )
            self._synthesizer.resolve_voice(VoiceRequest(job.voice, job.language, job.speaker))  # the workers load the same voices
        except SynthesisError as err:
            raise RequestError(_STATUS.get(type(err), 500), str(err), err.code) from None
        try:
            job_id = await self._jobs.enqueue(job)
        except QueueFull as err:
            response = web.json_response({"error": str(err), "code": "queue-full"}, status=503)
            response.headers["Retry-After"] = str(err.retry_after)
            return response
        except RedisUnavailable:
            raise RequestError(503, "The job queue (Redis) does not answer; try again shortly", "redis-unavailable") from None
        return web.json_response({"id": job_id, "state": "queued", "status_url": f"/api/tts/jobs/{job_id}"}, status=202)

    async def _job_status(self, request: web.Request) -> web.Response:
        if self._jobs is None:
            raise RequestError(404, "Asynchronous jobs need a queue: start the server with --redis-url", "jobs-off")
        job_id = request.match_info["id"]
        if not re.fullmatch(r"[0-9a-f]{32}", job_id):
            raise RequestError(404, "No such job", "not-found")
        try:
            status = await self._jobs.status(job_id)
        except RedisUnavailable:
            raise RequestError(503, "The job queue (Redis) does not answer; try again shortly", "redis-unavailable") from None
        if status is None:
            raise RequestError(404, "No such job (finished jobs are forgotten with their audio)", "not-found")
        return web.json_response(status)

    async def _refresh_job_stats(self) -> None:
        if self._jobs is None:
            return
        try:
            self.job_stats = await self._jobs.stats()
        except RedisUnavailable:
            self.job_stats = None

    async def _watch_jobs(self) -> None:
        """Queue length and job age for /metrics, and the finishing rate behind Retry-After."""
        while True:
            await self._refresh_job_stats()
            await asyncio.sleep(5.0)

    # -- cleanup -----------------------------------------------------------------------

    def _clean(self) -> None:
        """Drop files older than max_age, then the oldest beyond max_files: the article's growing-disk problem."""
        now = time.time()
        files = sorted((p.stat().st_mtime, p) for p in self._audio_dir.iterdir() if _AUDIO_NAME.match(p.name))
        keep: list[Path] = []
        for mtime, path in files:
            if now - mtime > self._settings.max_age:
                path.unlink(missing_ok=True)
            else:
                keep.append(path)
        for path in keep[: max(0, len(keep) - self._settings.max_files)]:
            path.unlink(missing_ok=True)

    async def _clean_periodically(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, max(1.0, self._settings.max_age / 4)))
            await asyncio.to_thread(self._clean)


async def _read_request(request: web.Request) -> tuple[dict[str, Any], str]:
    """The JSON object of a synthesis or job request, and its audio format."""
    try:
        body = await request.json()
    except ValueError:
        raise RequestError(400, "The body must be a JSON object", "bad-json") from None
    if not isinstance(body, dict):
        raise RequestError(400, "The body must be a JSON object", "bad-json")
    audio_format = str(body.get("format") or "wav").lower()
    if audio_format not in FORMATS:
        raise RequestError(400, f"Unknown format {audio_format!r}; use one of {', '.join(FORMATS)}", "bad-format")
    return body, audio_format


def _streaming_wav_header(rate: int) -> bytes:
    """A WAV header whose sizes say 'unknown' (0xFFFFFFFF), as streaming players accept."""
    unknown = 0xFFFFFFFF
    return (
        b"RIFF" + struct.pack("<I", unknown) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data" + struct.pack("<I", unknown)
    )


def encode_file(audio: np.ndarray, rate: int, audio_format: str) -> bytes:
    """A whole text's audio as the file a client downloads (the door's and the job workers')."""
    if audio_format == "pcm":
        return float_to_pcm16(audio)
    buffer = io.BytesIO()
    if audio_format == "wav":
        sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    elif audio_format == "ogg":
        opus_rate = next((r for r in sorted(_OPUS_RATES) if r >= rate), 48000)  # up, never down
        sf.write(buffer, resample(audio, rate, opus_rate), opus_rate, format="OGG", subtype="OPUS")
    else:
        sf.write(buffer, audio, rate, format="MP3", subtype="MPEG_LAYER_III")
    return buffer.getvalue()
