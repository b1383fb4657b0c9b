"""Command line: start the Wyoming server (and, later, the HTTP door)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from typing import TYPE_CHECKING

from wyoming.server import AsyncServer

from . import __version__
from .frontend import Frontend
from . import cli
from .memory import limit_arenas
from .server.wyoming import WyomingSettings, handler_factory
from .synthesis import SynthesisError, SynthesisSettings, Synthesizer, VoiceRequest
from .voices import VoiceCatalog

if TYPE_CHECKING:
    from .scale.store import SharedStore
    from .server.http import HttpDoor

_LOGGER = logging.getLogger("wyoming_indextts")

DEFAULT_VOICE = "zh_CN-baker"
MALLOC_ARENAS = 2
HTTP_TOKEN_ENV = "INDEXTTS_HTTP_TOKEN"  # the HTTP token when neither --http-token nor --http-token-file is given

# SIGTERM to exit: Docker and s6 (the Home Assistant add-on) kill soon after; we promise 2 s.
_STOP_HTTP_SECONDS = 0.5  # aiohttp would otherwise wait up to a minute for HTTP requests in flight
_STOP_WORKERS_SECONDS = 1.0  # a worker thread stops at its next audio chunk; don't wait longer than this
_DRAIN_SETTLE_SECONDS = 0.5  # --drain-seconds: this long with nothing in progress means drained
_DRAIN_LEAVE_SECONDS = 3.0  # --drain-seconds: /health says 503 this long before the ports close (HAProxy: 2 failed 1 s checks)


def default_model_dirs() -> list[Path]:
    """``models/`` of a source checkout (or Docker image), then ``./models``."""
    dirs = [Path(__file__).resolve().parent.parent / "models", Path.cwd() / "models"]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def build_parser() -> argparse.ArgumentParser:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(prog="wyoming-indextts", description="Wyoming speech-synthesis server (Chinese/English, ONNX Runtime)")
    parser.add_argument("--uri", default="tcp://0.0.0.0:10200", help="where to listen: tcp://HOST:PORT or unix://PATH")
    parser.add_argument("--voice", default=DEFAULT_VOICE, help="voice used when a request names none (default: %(default)s)")
    parser.add_argument("--speaker", help="speaker of the default voice for requests that name no voice")
    parser.add_argument("--data-dir", action="append", default=[], type=Path, help="extra folder with voices (repeatable; searched before models/)")
    parser.add_argument("--zeroconf", nargs="?", const="indextts", default=None, metavar="NAME", help="announce the server over mDNS/zeroconf as NAME")
    parser.add_argument("--samples-per-chunk", type=cli.positive_int, default=1024, help="audio samples per Wyoming audio-chunk")
    parser.add_argument("--idle-timeout", type=cli.seconds, default=120.0, metavar="SECONDS",
                        help="close connections silent for this long with no work in progress and no stream open (0: never)")
    parser.add_argument("--stream-timeout", type=cli.seconds, default=300.0, metavar="SECONDS",
                        help="end an open stream (synthesize-start without synthesize-stop) whose client sends nothing "
                        "for this long: error, then synthesize-stopped (0: never; default: %(default)s)")
    parser.add_argument("--threads", type=cli.positive_int, default=cores, help="ONNX Runtime intra-op threads per model session (default: CPU cores)")
    parser.add_argument("--max-workers", type=cli.positive_int, default=cores, help="sentences synthesized at once (default: CPU cores)")
    parser.add_argument("--max-queue", type=int, default=32, help="requests that may wait for a worker; more get a 'busy' error")
    parser.add_argument("--release-after-idle", type=cli.seconds, default=10.0, metavar="SECONDS",
                        help="after this long without requests, return ONNX Runtime's working memory to the OS (0: keep it)")
    parser.add_argument("--cache-mb", type=float, default=32.0, help="phrase cache size in MiB (0 turns it off)")
    parser.add_argument("--cache-dir", type=Path, help="keep the phrase cache in this folder across restarts")
    parser.add_argument("--preload-phrases", type=Path, metavar="FILE", help="synthesize these lines (one phrase each) into the cache at start-up")
    parser.add_argument("--max-text-chars", type=cli.positive_int, default=5000, help="longest text accepted in one request")
    parser.add_argument("--speed", type=cli.speed, default=1.0, help="speaking rate from 0.25 to 4, >1 is faster")
    parser.add_argument(
        "--fallback-voice", action="append", default=[], metavar="VOICE",
        help="voice to try when the requested one fails (repeatable, in order; espeak-ng is always last). "
        "Default: the default voice of the sentence's language, then espeak-ng",
    )
    parser.add_argument(
        "--synthesis-timeout", type=cli.seconds, default=10.0, metavar="SECONDS",
        help="a voice that delivers no audio for this long on a sentence is treated as failed (0: no limit)",
    )
    parser.add_argument("--sentence-silence", type=cli.seconds, default=0.0, metavar="SECONDS", help="silence after each sentence")
    parser.add_argument("--http-uri", metavar="URI", help="also serve the HTTP API and web page, e.g. http://127.0.0.1:8080 (off by default)")
    parser.add_argument("--http-cors", metavar="ORIGIN", help="allow browser pages from ORIGIN to call the HTTP API (off by default)")
    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--http-token", metavar="TOKEN",
        help=f"require 'Authorization: Bearer TOKEN' on the HTTP API and /metrics (the page asks for it). "
        f"Other users of this machine can read a command line: prefer --http-token-file or ${HTTP_TOKEN_ENV}",
    )
    token.add_argument("--http-token-file", type=Path, metavar="FILE", help="read the HTTP token from FILE (its first line)")
    parser.add_argument("--http-audio-dir", type=Path, metavar="DIR", help="where the HTTP API keeps generated files (default: a private temporary folder)")
    parser.add_argument("--http-max-files", type=cli.positive_int, default=200, help="generated audio files kept at most")
    parser.add_argument("--http-max-age", type=cli.seconds, default=3600.0, metavar="SECONDS", help="generated audio files are removed after this long")
    parser.add_argument("--lexicon", type=Path, help="word → pinyin overrides, one 'word pin1 yin1' per line")
    # Beyond one machine (docs/SCALING.md).
    parser.add_argument("--redis-url", metavar="URL",
                        help="share the phrase cache, the HTTP API's audio files and the job queue with other replicas "
                        "through this Redis, e.g. redis://redis:6379/0 (needs the [redis] extra; off by default)")
    parser.add_argument("--max-jobs-queued", type=cli.positive_int, default=100, metavar="N",
                        help="asynchronous jobs that may wait (with --redis-url); beyond, POST /api/tts/jobs answers 503 with Retry-After")
    parser.add_argument("--drain-seconds", type=cli.seconds, default=0.0, metavar="SECONDS",
                        help="on SIGTERM, leave the balancer (/health answers 503), stop accepting, and let requests in "
                        "progress finish for up to this long (0: cancel them and exit within 2 s; default: %(default)s)")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    parser.add_argument("--version", action="version", version=__version__)
    return parser


async def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if urlparse(args.uri).scheme not in ("tcp", "unix"):
        parser.error("--uri must look like tcp://HOST:PORT or unix://PATH")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    http_token = _http_token(parser, args)  # before the voices load: a bad token file fails at once

    synthesizer, store = await load_synthesizer(parser, args)
    server = AsyncServer.from_uri(args.uri)
    if args.zeroconf:
        try:
            await _announce(args.uri, args.zeroconf)
        except OSError as err:  # no route for multicast (e.g. no network yet): serve anyway
            _LOGGER.warning("Zeroconf announcement failed (%s); add the server in Home Assistant by host and port", err)

    wyoming_settings = WyomingSettings(
        samples_per_chunk=args.samples_per_chunk, idle_timeout=args.idle_timeout or None, stream_timeout=args.stream_timeout or None
    )
    await server.start(handler_factory(synthesizer, wyoming_settings))
    _LOGGER.info(
        "Ready in %.2f s on %s with voices: %s",
        time.monotonic() - started, args.uri, ", ".join(e.info.name for e in synthesizer.catalog.engines),
    )
    # Installed once serving: a SIGTERM while voices load still ends the process at once (nothing to save).
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    preload = asyncio.create_task(_preload(synthesizer, args.preload_phrases)) if args.preload_phrases else None
    http = _http_door(parser, args, synthesizer, http_token, store)
    try:
        if http is not None:
            await http.start()
        await stop.wait()
        if args.drain_seconds > 0:
            stop.clear()  # a second SIGTERM ends the drain
            await _drain(server, http, synthesizer, args.drain_seconds, stop)
        _LOGGER.info("Stopping: no new connections; synthesis in progress is cancelled")
    finally:
        # Stop accepting and close every connection: each connection cancels its queued work,
        # down to the worker threads, which stop at their next audio chunk.
        await server.stop()
        if preload is not None:
            preload.cancel()
        if http is not None:
            try:
                await asyncio.wait_for(http.stop(), _STOP_HTTP_SECONDS)
            except TimeoutError:
                _LOGGER.warning("HTTP requests still in progress are dropped")
        synthesizer.close()
        if store is not None:
            store.close()


def _http_token(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The HTTP door's shared token: --http-token, else the first line of --http-token-file, else
    $INDEXTTS_HTTP_TOKEN; None when none is set (the door is then open to whoever reaches it)."""
    if args.http_token_file is not None:
        try:
            lines = args.http_token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            parser.error(f"cannot read --http-token-file {args.http_token_file}: {err}")
        token, source = (lines[0] if lines else ""), f"--http-token-file {args.http_token_file}"
    elif args.http_token is not None:
        token, source = args.http_token, "--http-token"
    elif HTTP_TOKEN_ENV in os.environ:
        token, source = os.environ[HTTP_TOKEN_ENV], f"${HTTP_TOKEN_ENV}"
    else:
        return None
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        parser.error(f"the HTTP token from {source} is empty or contains spaces")
    return token


async def _drain(server: AsyncServer, http: "HttpDoor | None", synthesizer: Synthesizer, seconds: float, abort: asyncio.Event) -> None:
    """A rolling restart loses nothing that had started.

    First /health answers 503 "draining" while both ports still accept, so balancers (HAProxy,
    a Kubernetes readiness probe) take the replica out at their next check without a single
    connection refused; then the listeners close, and requests in progress get the rest of the
    grace period. Without the HTTP door there is no check to fail and the listener closes at once.
    """
    _LOGGER.info("Draining: leaving the balancer; requests in progress get up to %g s to finish", seconds)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    if http is not None:
        http.draining = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(abort.wait(), min(_DRAIN_LEAVE_SECONDS, seconds / 2))
        await http.stop_listening()
    listener = getattr(server, "_server", None)  # wyoming's AsyncTcpServer/AsyncUnixServer keep their asyncio.Server here
    if listener is not None:
        listener.close()  # only the listening socket: open connections go on
    idle_since: float | None = None
    while loop.time() < deadline and not abort.is_set():
        if synthesizer.active_requests:
            idle_since = None
        elif idle_since is None:
            idle_since = loop.time()
        elif loop.time() - idle_since >= _DRAIN_SETTLE_SECONDS:  # a stream's next sentence would have come by now
            _LOGGER.info("Drained: nothing in progress")
            return
        await asyncio.sleep(0.05)
    _LOGGER.warning("Drain ended with %d request(s) still in progress; they are cancelled", synthesizer.active_requests)


async def load_synthesizer(parser: argparse.ArgumentParser, args: argparse.Namespace) -> "tuple[Synthesizer, SharedStore | None]":
    """Voices, front end and synthesizer from the flags (the server's and the worker's), with
    the shared cache in front of Redis when ``--redis-url`` is given."""
    store = _shared_store(parser, args.redis_url) if args.redis_url else None  # a bad URL fails before voices load
    frontend = Frontend(lexicon=cli.lexicon_or_exit(parser, args.lexicon))
    # Every session may use all cores: a lone request gets them all, and with spinning
    # off (onnx.py) concurrent workers share them instead of fighting (docs/BENCHMARKS.md).
    catalog = await asyncio.to_thread(VoiceCatalog.discover, [*args.data_dir, *default_model_dirs()], max(1, args.threads), args.voice)
    if not catalog.engines:
        raise SystemExit("No voice could be loaded; see the errors above")

    settings = SynthesisSettings(
        max_text_chars=args.max_text_chars,
        max_workers=args.max_workers,
        speed=args.speed,
        synthesis_timeout=args.synthesis_timeout or None,
        sentence_silence=args.sentence_silence,
        fallback_voices=tuple(args.fallback_voice),
        max_queue=max(0, args.max_queue),
        cache_mb=max(0.0, args.cache_mb),
        cache_dir=args.cache_dir,
        default_speaker=args.speaker,
        release_after_idle=args.release_after_idle if args.release_after_idle > 0 else None,
    )
    cache = None
    if store is not None:
        from .cache import PhraseCache
        from .scale.cache import SharedPhraseCache

        cache = SharedPhraseCache(PhraseCache(int(settings.cache_mb * 1024 * 1024), settings.cache_dir), store)
    synthesizer = Synthesizer(catalog, frontend, settings, cache)
    # --voice and --speaker by the rules of a request. A voice that exists but failed to load
    # was logged and replaced by another; a name no folder or package has is a typo.
    failed = {failure.name for failure in catalog.failures}
    try:
        synthesizer.resolve_voice(VoiceRequest() if args.voice in failed else VoiceRequest(args.voice, speaker=args.speaker))
    except SynthesisError as err:
        synthesizer.close()
        parser.error(cli.describe_error(err))
    return synthesizer, store


def _shared_store(parser: argparse.ArgumentParser, url: str) -> "SharedStore":
    try:
        from .scale.store import SharedStore

        return SharedStore(url)
    except ImportError:
        parser.error("--redis-url needs the redis extra: pip install 'wyoming-indextts[redis]'")
    except ValueError as err:  # not a redis:// (or rediss://, unix://) URL
        parser.error(f"--redis-url: {err}")


def _http_door(
    parser: argparse.ArgumentParser, args: argparse.Namespace, synthesizer: Synthesizer, token: str | None,
    store: "SharedStore | None" = None,
) -> "HttpDoor | None":
    if not args.http_uri:
        return None
    from .server.http import HttpDoor, HttpSettings

    uri = args.http_uri if "://" in args.http_uri else f"http://{args.http_uri}"
    parsed = urlparse(uri)
    if parsed.scheme != "http" or parsed.port is None:
        parser.error("--http-uri must look like http://HOST:PORT")
    host = parsed.hostname or "127.0.0.1"  # loopback unless a host is given
    if token is None and host not in ("127.0.0.1", "::1", "localhost"):
        _LOGGER.warning("The HTTP API on %s has no token: anyone who reaches that address can use it (see --http-token-file)", uri)
    return HttpDoor(
        synthesizer,
        HttpSettings(
            host=host,
            port=parsed.port,
            token=token,
            cors_origin=args.http_cors,
            audio_dir=args.http_audio_dir,
            max_files=args.http_max_files,
            max_age=max(1.0, args.http_max_age),
            max_body_bytes=max(64 * 1024, args.max_text_chars * 4 + 4096),
            max_jobs_queued=args.max_jobs_queued,
        ),
        store,
    )


async def _preload(synthesizer: Synthesizer, path: Path) -> None:
    """Fill the phrase cache after start-up, so describe is not delayed by it."""
    try:
        phrases = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        _LOGGER.error("Cannot read --preload-phrases %s: %s", path, err)
        return
    started = time.monotonic()
    voice = synthesizer.resolve_voice(VoiceRequest())
    try:
        added = await synthesizer.preload(phrases, voice)
    except SynthesisError as err:
        _LOGGER.error("Preloading phrases stopped: %s", err)
        return
    _LOGGER.info("Preloaded %d phrases into the cache in %.1f s", added, time.monotonic() - started)


async def _announce(uri: str, name: str) -> None:
    from wyoming.zeroconf import HomeAssistantZeroconf

    parsed = urlparse(uri)
    if parsed.scheme != "tcp" or parsed.port is None:
        raise SystemExit("--zeroconf needs a tcp:// URI")
    # Bound to every interface: let the helper find the real address rather than advertising 0.0.0.0.
    host = None if parsed.hostname in (None, "0.0.0.0", "::") else parsed.hostname
    hass_zeroconf = HomeAssistantZeroconf(port=parsed.port, name=name, host=host)
    await hass_zeroconf.register_server()
    _LOGGER.info("Announced %s._wyoming._tcp.local. at %s:%s", name, hass_zeroconf.host, parsed.port)


def run() -> None:
    # Before any thread starts: every thread that allocates gets a glibc arena (up to 8 per
    # core), each keeping its own freed memory. Two arenas held the soak's RSS flatter at no
    # measurable cost (docs/RELIABILITY.md). An explicit MALLOC_ARENA_MAX wins.
    if "MALLOC_ARENA_MAX" not in os.environ:
        limit_arenas(MALLOC_ARENAS)
    if sys.argv[1:2] == ["worker"]:  # wyoming-indextts worker --redis-url URL: drains the job queue
        from .scale.worker import run

        run(sys.argv[2:])
        _exit_when_workers_stop(_STOP_WORKERS_SECONDS)
        return
    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # Ctrl-C while voices were still loading
        pass
    _exit_when_workers_stop(_STOP_WORKERS_SECONDS)


def _exit_when_workers_stop(seconds: float) -> None:
    """Python waits for every worker thread at exit; one inside a long model call would hold the
    exit past the promised 2 s, so wait for them only so long, then leave without them."""
    deadline = time.monotonic() + seconds
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            _LOGGER.warning("Worker %s is still busy; exiting without it", thread.name)
            logging.shutdown()
            os._exit(0)


if __name__ == "__main__":
    run()
