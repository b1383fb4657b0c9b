"""One request → voice resolution → sentences → engine (in a worker thread) → audio chunks.

The doors (Wyoming, HTTP) only translate their protocol to these calls.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .audio import AudioChunk
from .engines.base import Cancelled, Engine, SynthesisConfig, UnknownSpeakerError
from .frontend import Frontend, Sentence
from .voices import VoiceCatalog, VoiceNotFoundError

_LOGGER = logging.getLogger(__name__)


class SynthesisError(Exception):
    """A request that cannot be served; ``code`` is stable for clients, the message is for people."""

    code = "synthesis-failed"


class EmptyTextError(SynthesisError):
    code = "empty-text"


class TextTooLongError(SynthesisError):
    code = "text-too-long"


class UnknownVoiceError(SynthesisError):
    code = "unknown-voice"


@dataclass(frozen=True)
class VoiceRequest:
    """Which voice a client asked for; every field optional."""

    name: str | None = None
    language: str | None = None
    speaker: str | None = None


@dataclass(frozen=True)
class SynthesisSettings:
    max_text_chars: int = 5000
    max_workers: int = 2
    speed: float = 1.0


@dataclass(frozen=True)
class ResolvedVoice:
    engine: Engine
    speaker: str | None

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate


_DONE = object()


class Synthesizer:
    """Owns the worker threads; shared by every connection of every door."""

    def __init__(self, catalog: VoiceCatalog, frontend: Frontend, settings: SynthesisSettings = SynthesisSettings()) -> None:
        self.catalog = catalog
        self.frontend = frontend
        self.settings = settings
        self._executor = ThreadPoolExecutor(max_workers=max(1, settings.max_workers), thread_name_prefix="synth")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def resolve_voice(self, request: VoiceRequest) -> ResolvedVoice:
        """Pick the voice before any audio is sent, so errors come before ``audio-start``."""
        try:
            engine = self.catalog.resolve(request.name, request.language)
            if request.speaker is not None:
                engine.info.speaker_id(request.speaker)
        except (VoiceNotFoundError, UnknownSpeakerError) as err:
            raise UnknownVoiceError(str(err)) from None
        return ResolvedVoice(engine, request.speaker)

    def check_text(self, text: str, allow_empty: bool = False) -> None:
        if not allow_empty and not text.strip():
            raise EmptyTextError("The text to synthesize is empty")
        if len(text) > self.settings.max_text_chars:
            raise TextTooLongError(
                f"The text has {len(text)} characters; this server accepts at most {self.settings.max_text_chars}"
            )

    def split(self, text: str) -> list[Sentence]:
        return self.frontend.sentences(text)

    async def stream(self, text: str, voice: ResolvedVoice, speed: float | None = None) -> AsyncIterator[AudioChunk]:
        """Audio for ``text`` sentence by sentence; the first chunk leaves before later sentences are done."""
        self.check_text(text)
        config = SynthesisConfig(speed=speed or self.settings.speed, speaker=voice.speaker)
        for sentence in self.split(text):
            async for chunk in self.stream_sentence(sentence, voice, config):
                yield chunk

    async def stream_sentence(self, sentence: Sentence, voice: ResolvedVoice, config: SynthesisConfig) -> AsyncIterator[AudioChunk]:
        started = time.monotonic()
        samples = 0
        try:
            async for audio in self._run_in_worker(voice.engine, sentence, config):
                samples += len(audio)
                yield AudioChunk(audio, voice.sample_rate)
        except SynthesisError:
            raise
        except Exception as err:
            _LOGGER.exception("Voice %s failed on %r", voice.engine.info.name, sentence.text)
            raise SynthesisError(f"Voice {voice.engine.info.name!r} failed to synthesize {sentence.text!r}: {err}") from err
        elapsed = time.monotonic() - started
        if samples:
            _LOGGER.debug(
                "%s: %d chars → %.2f s audio in %.3f s (RTF %.3f)",
                voice.engine.info.name, len(sentence.text), samples / voice.sample_rate, elapsed,
                elapsed / (samples / voice.sample_rate),
            )

    async def _run_in_worker(self, engine: Engine, sentence: Sentence, config: SynthesisConfig) -> AsyncIterator[np.ndarray]:
        """Run the blocking engine in a worker thread and hand its chunks to the event loop as they come.

        If the consumer stops early (client gone, task cancelled), the worker is told
        to stop at its next check instead of finishing a sentence nobody hears.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # loop already closed: nobody is listening
                cancel.set()

        def produce() -> None:
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
        finished = False
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    finished = True
                    break
                if isinstance(item, Exception):
                    finished = True
                    raise item
                assert isinstance(item, np.ndarray)
                yield item
        finally:
            if not finished:
                cancel.set()
            else:
                await future
