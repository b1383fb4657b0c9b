"""One request → voice resolution → sentences → engines (in worker threads) → audio chunks.

The doors (Wyoming, HTTP) only translate their protocol to these calls.

How a sentence becomes audio
----------------------------
1. **Pieces.** The front end tags each sentence's spans with a language. Consecutive spans
   the requested voice speaks form one piece for it; a span of a language it does not speak
   (an English name inside Chinese text, a Chinese sentence sent to an English voice) goes to
   that language's default voice. Pieces are joined with their silences at the join trimmed
   and a short cross-fade, so a spliced word sounds like part of the sentence.
2. **One format per stream.** The stream's rate is the requested voice's rate. A piece from a
   voice with another rate is synthesized whole and resampled once (band-limited FFT), which
   also keeps it free to fall back, since none of it has been sent.
3. **Fallback chain.** Each piece has a chain: its voice, then ``--fallback-voice`` entries (or,
   by default, the default voice of the piece's language), then espeak-ng, which cannot fail
   to load. Voices that do not speak the piece's language are skipped. If a voice raises, or
   leaves the worker waiting longer than ``--synthesis-timeout`` for its next audio, before
   any of the piece's audio was sent, the whole piece goes to the next voice: a warning is
   logged and the voice's failure counter moves.
4. **After partial audio.** If a voice fails after some of a piece was already sent, the rest
   of that piece is dropped (logged and counted as ``truncated``); we cannot know which words
   were already spoken, and repeating the start with another voice would be worse than a cut.
   The next sentence starts again with the requested voice.

A timed-out worker thread cannot be interrupted inside ONNX Runtime; it is told to stop at
its next check and its output is discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from dataclasses import dataclass, replace

import numpy as np

from .audio import AudioChunk, resample, silence
from .cache import AudioCache, CacheStats, PhraseCache, cache_key
from .engines.base import Cancelled, Engine, EngineError, SynthesisConfig, UnknownSpeakerError
from .frontend import Frontend, Sentence, Span
from .frontend.pipeline import split_head
from .memory import trim
from .onnx import release_arena
from .voices import VoiceCatalog, VoiceNotFoundError, speaks

_LOGGER = logging.getLogger(__name__)

LAST_RESORT_VOICE = "espeak-ng"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class SynthesisError(Exception):
    """A request that cannot be served; ``code`` is stable for clients, the message is for people."""

    code = "synthesis-failed"


class EmptyTextError(SynthesisError):
    code = "empty-text"


class TextTooLongError(SynthesisError):
    code = "text-too-long"


class UnknownVoiceError(SynthesisError):
    code = "unknown-voice"


class BusyError(SynthesisError):
    """Every worker is busy and the queue is full: answer at once rather than hang."""

    code = "busy"


class BadSpeedError(SynthesisError):
    code = "bad-speed"


class BadFieldError(SynthesisError):
    """A request field of the wrong type (a client bug, not a text problem)."""

    code = "bad-field"


class BadRequestError(SynthesisError):
    """A request the server cannot even read: malformed event, out-of-order event."""

    code = "bad-event"


SPEED_RANGE = (0.25, 4.0)
"""Speaking rates every door accepts: beyond them voices turn to mumble or a drawl."""

NOTHING_SPOKEN_SECONDS = 0.2
"""Text with nothing to say (「。。。」) is answered with this much silence rather than no audio:
Home Assistant cannot convert an audio stream without a single chunk (docs/ARCHITECTURE.md)."""


def check_speed(speed: object) -> float:
    """The one rule for a speaking rate, whichever door or flag it came through."""
    low, high = SPEED_RANGE
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise BadSpeedError(f"speed must be a number from {low:g} to {high:g} (1 is normal), got {speed!r}")
    if not low <= float(speed) <= high:  # also refuses nan
        raise BadSpeedError(f"speed must be a number from {low:g} to {high:g} (1 is normal), got {speed:g}")
    return float(speed)


def nothing_spoken(sample_rate: int) -> AudioChunk:
    """The answer to a text with nothing speakable in it: a short silence."""
    return AudioChunk(silence(NOTHING_SPOKEN_SECONDS, sample_rate), sample_rate)


@dataclass(frozen=True)
class VoiceRequest:
    """Which voice a client asked for; every field optional."""

    name: str | None = None
    language: str | None = None
    speaker: str | None = None


class SynthesisTimeout(EngineError):
    """A voice left the worker waiting longer than ``synthesis_timeout`` for its next audio."""


@dataclass(frozen=True)
class SynthesisSettings:
    max_text_chars: int = 5000
    max_workers: int = 2
    speed: float = 1.0
    synthesis_timeout: float | None = 10.0
    """Seconds a voice may take to deliver its first (or next) audio of a sentence; None: no limit."""
    sentence_silence: float = 0.0
    """Seconds of silence after each sentence."""
    fallback_voices: tuple[str, ...] = ()
    """The fallback chain after the requested voice; empty: the default voice of the language."""
    crossfade: float = 0.012
    """Seconds of overlap where pieces of one sentence are joined."""
    join_pause: float = 0.05
    """Silence kept on each side of a join inside a sentence, after trimming."""
    max_queue: int = 32
    """Requests that may wait for a worker; more are refused as busy."""
    cache_mb: float = 32.0
    """Phrase cache size in MiB (0: off)."""
    cache_dir: Path | None = None
    """Folder that keeps the phrase cache across restarts."""
    default_speaker: str | None = None
    """Speaker used when a request names no voice at all."""
    release_after_idle: float | None = 10.0
    """Seconds without requests after which ONNX Runtime's arena and the freed heap go back to
    the OS (a few ms of page faults on the next request); None: keep them."""


@dataclass(frozen=True)
class VoiceFailures:
    """How often a voice failed, for /health and the log."""

    errors: int = 0
    """Raised before any audio of the piece was sent (the piece moved to the next voice)."""
    timeouts: int = 0
    """Exceeded the synthesis timeout before any audio was sent (the piece moved on)."""
    truncated: int = 0
    """Failed after part of the piece was sent: the rest of that piece was dropped."""
    last_error: str = ""
    last_failure: float = 0.0
    """``time.time()`` of the last failure."""

    @property
    def total(self) -> int:
        return self.errors + self.timeouts + self.truncated


@dataclass(frozen=True)
class Piece:
    """Part of a sentence one voice speaks: consecutive spans of languages it speaks."""

    sentence: Sentence
    engine: Engine
    language: str


@dataclass(frozen=True)
class ResolvedVoice:
    engine: Engine
    speaker: str | None

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate


_DONE = object()
_STARTED = object()


def release_memory() -> None:
    """What an idle server gives back: the shared ONNX arena's unused chunks, then freed heap."""
    try:
        release_arena()
    except Exception as err:  # noqa: BLE001 — an optimisation; never let it hurt serving
        _LOGGER.debug("Could not shrink the ONNX arena: %s", err)
    trim()


class Synthesizer:
    """Owns the worker threads and the failure counters; shared by every connection of every door."""

    def __init__(
        self, catalog: VoiceCatalog, frontend: Frontend, settings: SynthesisSettings = SynthesisSettings(), cache: AudioCache | None = None
    ) -> None:
        self.catalog = catalog
        self.frontend = frontend
        self.settings = settings
        self._executor = ThreadPoolExecutor(max_workers=max(1, settings.max_workers), thread_name_prefix="synth")
        # Plain data behind a lock: updated on the event loop, read by /health from anywhere.
        self._failures: dict[str, VoiceFailures] = {}
        self._failures_lock = threading.Lock()
        # A shared cache (--redis-url) is built by the caller around a PhraseCache of these settings.
        self.cache: AudioCache = cache if cache is not None else PhraseCache(int(settings.cache_mb * 1024 * 1024), settings.cache_dir)
        # Every loaded voice and its version: the disk cache must not outlive a voice change.
        self._voices_signature = sorted((e.info.name, e.info.version, e.info.engine) for e in catalog.engines)
        self._active = 0
        self._release_timer: asyncio.TimerHandle | None = None
        known = {e.info.name for e in catalog.engines}
        for name in settings.fallback_voices:
            if name not in known:
                _LOGGER.warning("Fallback voice %s is not loaded; it is left out of the chain", name)

    def close(self) -> None:
        if self._release_timer is not None:
            self._release_timer.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- requests ----------------------------------------------------------------

    def resolve_voice(self, request: VoiceRequest) -> ResolvedVoice:
        """Pick the voice before any audio is sent, so errors come before ``audio-start``."""
        for field in ("name", "language", "speaker"):
            if not isinstance(getattr(request, field), (str, type(None))):
                raise BadFieldError(f"The voice {field} must be a string, got {getattr(request, field)!r}")
        speaker = request.speaker
        if request.name is None and request.language is None and speaker is None:
            speaker = self.settings.default_speaker
        try:
            engine = self.catalog.resolve(request.name, request.language)
            if speaker is not None:
                engine.info.speaker_id(speaker)
        except (VoiceNotFoundError, UnknownSpeakerError) as err:
            raise UnknownVoiceError(str(err)) from None
        return ResolvedVoice(engine, speaker)

    @staticmethod
    def clean_text(text: str) -> str:
        """What a client sent, made safe to process: JSON can carry lone surrogates
        ("\\ud800") that no encoder accepts, and control characters mean nothing to a voice."""
        text = text.encode("utf-8", "replace").decode("utf-8")
        return _CONTROL.sub(" ", text)

    def accept_text(self, value: object) -> str:
        """The text of a request as every door takes it: cleaned, and checked against the limits."""
        if value is None:
            raise EmptyTextError("The text to synthesize is empty")
        if not isinstance(value, str):
            raise BadFieldError(f"The text must be a string, got {type(value).__name__}")
        text = self.clean_text(value)
        self.check_text(text)
        return text

    def check_text(self, text: str, allow_empty: bool = False) -> None:
        if not allow_empty and not text.strip():
            raise EmptyTextError("The text to synthesize is empty")
        if len(text) > self.settings.max_text_chars:
            raise TextTooLongError(
                f"The text has {len(text)} characters; this server accepts at most {self.settings.max_text_chars}"
            )

    def split(self, text: str) -> list[Sentence]:
        return self.frontend.sentences(text)

    # -- admission -----------------------------------------------------------------

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a place for one request; refuse at once when workers and queue are full.

        Runs on the event loop only, so the counter needs no lock.
        """
        limit = max(1, self.settings.max_workers) + max(0, self.settings.max_queue)
        if self._active >= limit:
            raise BusyError(
                f"The server is busy ({self._active} requests in progress, limit {limit}); try again shortly"
            )
        self._active += 1
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        try:
            yield
        finally:
            self._active -= 1
            delay = self.settings.release_after_idle
            if self._active == 0 and delay is not None:
                self._release_timer = asyncio.get_running_loop().call_later(delay, self._release_idle_memory)

    def _release_idle_memory(self) -> None:
        """Still idle: shrink the ONNX arena and trim the heap, in a worker (it is blocking)."""
        self._release_timer = None
        if self._active == 0:
            self._executor.submit(release_memory)

    @property
    def active_requests(self) -> int:
        return self._active

    @property
    def queue_length(self) -> int:
        """Requests admitted but waiting for a worker."""
        return max(0, self._active - max(1, self.settings.max_workers))

    def cache_stats(self) -> CacheStats:
        return self.cache.stats()

    async def preload(self, phrases: Iterable[str], voice: ResolvedVoice) -> int:
        """Synthesize frequent announcements into the cache; returns how many were new."""
        added = 0
        for phrase in phrases:
            phrase = phrase.strip()
            if not phrase or phrase.startswith("#"):
                continue
            before = self.cache.stats().entries
            async for _ in self.stream(phrase, voice):
                pass
            added += self.cache.stats().entries > before
        return added

    # -- failure counters ----------------------------------------------------------

    def failure_counts(self) -> dict[str, VoiceFailures]:
        """A snapshot of the per-voice failure counters (voices that never failed are absent)."""
        with self._failures_lock:
            return dict(self._failures)

    def _count_failure(self, voice: str, kind: str, err: BaseException) -> None:
        with self._failures_lock:
            current = self._failures.get(voice, VoiceFailures())
            self._failures[voice] = replace(
                current,
                **{kind: getattr(current, kind) + 1},
                last_error=f"{type(err).__name__}: {err}",
                last_failure=time.time(),
            )

    # -- planning ------------------------------------------------------------------

    def plan(self, sentence: Sentence, voice: ResolvedVoice) -> list[Piece]:
        """Cut a sentence into pieces, each for the voice that speaks its language."""
        groups: list[tuple[Engine, str, list[Span]]] = []
        for span in sentence.spans:
            engine = self._voice_for(span.language, voice.engine)
            if engine is None:
                _LOGGER.warning("No voice speaks %s; %r is not spoken", span.language, span.text)
                continue
            if groups and groups[-1][0] is engine:
                groups[-1][2].append(span)
            else:
                groups.append((engine, span.language, [span]))
        pieces: list[Piece] = []
        for k, (engine, language, spans) in enumerate(groups):
            part = Sentence(
                text="".join(s.text for s in spans),
                normalized=sentence.normalized,
                spans=tuple(spans),
                # Only the piece that ends the sentence carries its final (question) contour.
                is_question=sentence.is_question and k == len(groups) - 1,
                emphasis=sentence.emphasis,
            )
            pieces.append(Piece(part, engine, language))
        return pieces

    def _voice_for(self, language: str, requested: Engine) -> Engine | None:
        if speaks(requested.info, language):
            return requested
        return self.catalog.default_for_language(language)

    def chain(self, primary: Engine, language: str) -> list[Engine]:
        """The voices that try a piece, in order; every one speaks ``language``."""
        names = list(self.settings.fallback_voices)
        if not names:
            default = self.catalog.default_for_language(language)
            names = [default.info.name] if default is not None else []
        names.append(LAST_RESORT_VOICE)
        chain = [primary]
        for name in names:
            try:
                engine = self.catalog.get(name)
            except VoiceNotFoundError:
                continue
            if engine not in chain and speaks(engine.info, language):
                chain.append(engine)
        return chain

    # -- streaming -----------------------------------------------------------------

    async def stream(
        self, text: str, voice: ResolvedVoice, speed: float | None = None, pad_silence: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> AsyncIterator[AudioChunk]:
        """Audio for ``text`` at the voice's rate, sentence by sentence; the first chunk leaves
        before later sentences are done.

        A text with nothing speakable yields :func:`nothing_spoken` unless ``pad_silence`` is
        off (a piece of a longer stream, which ends with audio of its own). ``progress(done,
        total)`` hears of each finished sentence (asynchronous jobs report it).
        """
        self.check_text(text)
        config = SynthesisConfig(speed=check_speed(speed or self.settings.speed), speaker=voice.speaker)
        sentences = self.split(text)
        if sentences:
            # Only the first sentence decides how soon audio starts; later ones are
            # synthesized while earlier ones play. (Cached, its two parts are hits too.)
            sentences[:1] = split_head(sentences[0])
        spoken = False
        for done, sentence in enumerate(sentences, 1):
            async for chunk in self.stream_sentence(sentence, voice, config):
                spoken = spoken or len(chunk.samples) > 0
                yield chunk
            if progress is not None:
                progress(done, len(sentences))
        if not spoken and pad_silence:
            _LOGGER.info("Nothing to speak in %r; answering with %g s of silence", text[:80], NOTHING_SPOKEN_SECONDS)
            yield nothing_spoken(voice.sample_rate)

    async def stream_sentence(
        self, sentence: Sentence, voice: ResolvedVoice, config: SynthesisConfig, rate: int | None = None
    ) -> AsyncIterator[AudioChunk]:
        """One sentence at ``rate`` (default: the voice's), pieces spliced, then the sentence silence."""
        rate = rate or voice.sample_rate
        key = self._cache_key(sentence, voice, config, rate)
        cached = await self.cache.fetch(key)
        if cached is not None:
            yield AudioChunk(cached, rate)
            return
        started = time.monotonic()
        produced: list[np.ndarray] = []
        outcome = _Outcome()
        pieces = self.plan(sentence, voice)
        splicer = _Splicer(rate, self.settings.crossfade, self.settings.join_pause)
        for k, piece in enumerate(pieces):
            piece_config = config if piece.engine is voice.engine else replace(config, speaker=None)
            first, last = k == 0, k == len(pieces) - 1
            async for audio in splicer.piece(self._piece_audio(piece, piece_config, rate, outcome), first, last):
                produced.append(audio)
                yield AudioChunk(audio, rate)
        tail = splicer.finish()
        if len(tail):
            produced.append(tail)
            yield AudioChunk(tail, rate)
        samples = sum(len(a) for a in produced)
        if samples and self.settings.sentence_silence > 0:
            pause = silence(self.settings.sentence_silence, rate)
            produced.append(pause)
            yield AudioChunk(pause, rate)
        if samples and not outcome.failed:
            # Only audio from the voices that were meant to speak is worth repeating.
            self.cache.put(key, np.concatenate(produced))
        elapsed = time.monotonic() - started
        if samples:
            _LOGGER.debug(
                "%s: %d chars → %.2f s audio in %.3f s (RTF %.3f)",
                voice.engine.info.name, len(sentence.text), samples / rate, elapsed, elapsed / (samples / rate),
            )

    def _cache_key(self, sentence: Sentence, voice: ResolvedVoice, config: SynthesisConfig, rate: int) -> str:
        """Everything that changes the sound: voices and versions, speaker, speed, rate, the full reading."""
        return cache_key(
            voice.engine.info.name, self._voices_signature, config.speaker, round(config.speed, 4), rate,
            self.settings.sentence_silence, sentence.normalized, sentence.is_question, list(sentence.emphasis),
            [(span.language, span.text, [(s.pinyin, s.boundary) for s in span.syllables]) for span in sentence.spans],
        )

    async def _piece_audio(
        self, piece: Piece, config: SynthesisConfig, rate: int, outcome: "_Outcome"
    ) -> AsyncIterator[np.ndarray]:
        """A piece's audio at ``rate``, moved along the fallback chain while nothing has been sent."""
        chain = self.chain(piece.engine, piece.language)
        for position, engine in enumerate(chain):
            if position:
                config = replace(config, speaker=None)
            # Another rate: synthesize whole, resample once (no seams), and keep the piece movable.
            buffered: list[np.ndarray] | None = [] if engine.sample_rate != rate else None
            sent = False
            try:
                async for audio in self._run_in_worker(engine, piece.sentence, config):
                    if buffered is not None:
                        buffered.append(audio)
                        continue
                    sent = True
                    yield audio
                if buffered:
                    yield resample(np.concatenate(buffered), engine.sample_rate, rate)
                return
            except (Cancelled, asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as err:  # noqa: BLE001 — any engine failure is handled the same way
                outcome.failed = True
                name = engine.info.name
                if sent:
                    self._count_failure(name, "truncated", err)
                    _LOGGER.warning(
                        "Voice %s failed part-way through %r (%s); the rest of it is dropped", name, piece.sentence.text, err
                    )
                    return
                self._count_failure(name, "timeouts" if isinstance(err, SynthesisTimeout) else "errors", err)
                if position + 1 < len(chain):
                    _LOGGER.warning(
                        "Voice %s failed on %r (%s: %s); trying %s",
                        name, piece.sentence.text, type(err).__name__, err, chain[position + 1].info.name,
                    )
                    continue
                _LOGGER.error("Voice %s failed on %r and no fallback is left", name, piece.sentence.text, exc_info=err)
                raise SynthesisError(f"Voice {name!r} failed to synthesize {piece.sentence.text!r}: {err}") from err

    async def _run_in_worker(self, engine: Engine, sentence: Sentence, config: SynthesisConfig) -> AsyncIterator[np.ndarray]:
        """Run the blocking engine in a worker thread and hand its chunks to the event loop as they come.

        The timeout clock starts when a worker picks the job up, so time queued behind other
        requests is not blamed on the voice. If the consumer stops early (client gone, task
        cancelled, timeout), the worker is told to stop at its next check instead of finishing
        a sentence nobody hears.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()
        timeout = self.settings.synthesis_timeout

        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # loop already closed: nobody is listening
                cancel.set()

        def produce() -> None:
            put(_STARTED)
            try:
                for audio in engine.synthesize(sentence, config, cancel):
                    put(audio)
                    if cancel.is_set():
                        raise Cancelled()
                put(_DONE)
            except Cancelled:
                put(_DONE)
            except Exception as err:  # noqa: BLE001 — handed to the event loop and raised there
                put(err)

        future = loop.run_in_executor(self._executor, produce)
        finished = False  # the worker has handed over its last item and is returning
        started = False
        try:
            while True:
                if started and timeout:
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout)
                    except asyncio.TimeoutError:
                        raise SynthesisTimeout(f"no audio from {engine.info.name} within {timeout:g} s") from None
                else:
                    item = await queue.get()
                if item is _STARTED:
                    started = True
                    continue
                if item is _DONE:
                    finished = True
                    break
                if isinstance(item, Exception):
                    finished = True
                    raise item
                assert isinstance(item, np.ndarray)
                yield item
        finally:
            if finished:
                await future
            else:
                # Client gone or timed out: stop the worker at its next check; its output is dropped.
                cancel.set()


@dataclass
class _Outcome:
    """What happened while one sentence was synthesized (mutable, one per sentence)."""

    failed: bool = False


class _Splicer:
    """Joins the pieces of one sentence: trims silence at each join, then cross-fades.

    A piece that is not the last is held back one chunk, so its trailing silence can be
    trimmed and its end overlapped with the next piece; the last piece streams through.
    """

    SILENT = 0.01  # about -40 dBFS

    def __init__(self, rate: int, crossfade: float, keep: float) -> None:
        self._fade = max(0, int(crossfade * rate))
        self._keep = max(0, int(keep * rate))
        self._held: np.ndarray | None = None

    async def piece(self, audio: AsyncIterator[np.ndarray], first: bool, last: bool) -> AsyncIterator[np.ndarray]:
        leading = not first  # trim this piece's leading silence (the join with the previous piece)
        pending: np.ndarray | None = None
        async for chunk in audio:
            if leading:
                chunk = self._trim_start(chunk)
                if not len(chunk):
                    continue
                leading = False
            if self._held is not None:
                chunk = self._join(self._held, chunk)
                self._held = None
            if last:
                yield chunk
                continue
            if pending is not None:
                yield pending
            pending = chunk
        if pending is not None:
            self._held = self._trim_end(pending)

    def finish(self) -> np.ndarray:
        held, self._held = self._held, None
        return held if held is not None else np.zeros(0, dtype=np.float32)

    def _trim_start(self, chunk: np.ndarray) -> np.ndarray:
        loud = np.flatnonzero(np.abs(chunk) > self.SILENT)
        if not len(loud):
            return chunk[:0]
        return chunk[max(0, loud[0] - self._keep) :]

    def _trim_end(self, chunk: np.ndarray) -> np.ndarray:
        loud = np.flatnonzero(np.abs(chunk) > self.SILENT)
        if not len(loud):
            return chunk[: self._keep]
        return chunk[: loud[-1] + 1 + self._keep]

    def _join(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        n = min(self._fade, len(before), len(after))
        if n == 0:
            return np.concatenate([before, after]).astype(np.float32, copy=False)
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        overlap = before[-n:] * (1.0 - ramp) + after[:n] * ramp
        return np.concatenate([before[:-n], overlap, after[n:]]).astype(np.float32, copy=False)
