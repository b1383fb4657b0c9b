"""Wyoming door: protocol events ⇄ synthesis requests, one handler per connection.

Reading and writing are split: the read loop answers ``describe`` at once and
queues synthesis work; one writer task per connection runs that work in order,
so a long synthesis never delays ``describe`` and a client that leaves cancels
what it queued.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from wyoming.audio import AudioChunk as WyomingAudioChunk
from wyoming.audio import AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from .. import __version__
from ..audio import PCM_CHANNELS, PCM_WIDTH, float_to_pcm16, resample
from ..frontend.segment import complete_prefix
from ..synthesis import ResolvedVoice, SynthesisError, Synthesizer, VoiceRequest

_LOGGER = logging.getLogger(__name__)

MAX_EVENT_BYTES = 1 << 20
"""Largest JSON header, data or payload accepted; larger means a broken or hostile client."""


class ProtocolError(Exception):
    """The client broke the framing; after this the connection cannot be trusted."""


@dataclass(frozen=True)
class WyomingSettings:
    samples_per_chunk: int = 1024
    idle_timeout: float | None = None


def build_info(synthesizer: Synthesizer) -> Info:
    voices = []
    for engine in synthesizer.catalog.engines:
        info = engine.info
        voices.append(
            TtsVoice(
                name=info.name,
                description=info.description or info.name,
                attribution=Attribution(name=info.attribution_name, url=info.attribution_url),
                installed=True,
                version=info.version or None,
                languages=list(info.languages),
                speakers=[TtsVoiceSpeaker(name=s.name) for s in info.speakers] if len(info.speakers) > 1 else None,
            )
        )
    program = TtsProgram(
        name="indextts",
        description="IndexTTS-style low-latency Chinese/English speech synthesis on ONNX Runtime",
        attribution=Attribution(name="wyoming-indextts", url="https://github.com/wyoming-indextts/wyoming-indextts"),
        installed=True,
        version=__version__,
        voices=voices,
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])


@dataclass
class _Job:
    """One unit of work for the writer task, in arrival order."""

    kind: str  # "synthesize" | "stream-start" | "stream-text" | "stream-stop"
    text: str = ""
    voice: ResolvedVoice | None = None
    request_failed: bool = False


class WyomingEventHandler(AsyncEventHandler):
    def __init__(
        self,
        synthesizer: Synthesizer,
        settings: WyomingSettings,
        info: Info,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(reader, writer)
        self._synthesizer = synthesizer
        self._settings = settings
        self._info_event = info.event()
        # Bounded: a client flooding requests is slowed down (reads pause), not buffered without limit.
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue(maxsize=32)
        self._worker: asyncio.Task[None] | None = None
        self._working = False
        self._streaming = False
        self._stream_failed = False
        self._stream_buffer = ""
        # Per streamed request: the format of its single audio-start.
        self._stream_rate: int | None = None
        self._stream_voice: ResolvedVoice | None = None

    # -- reading ---------------------------------------------------------------

    async def run(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="wyoming synthesis writer")
        try:
            while True:
                try:
                    event = await self._read_event_within_idle_timeout()
                except ProtocolError as err:
                    await self._send_error(str(err), "protocol-error")
                    break
                except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                    break
                if event is None:
                    break
                if isinstance(event, str):  # a malformed but framed event
                    await self._send_error(event, "bad-event")
                    continue
                if not await self.handle_event(event):
                    break
        finally:
            # The client is gone: whatever it queued is cancelled, down to the worker threads.
            if self._worker is not None:
                self._worker.cancel()
                await asyncio.gather(self._worker, return_exceptions=True)
            self.writer.close()

    async def _read_event_within_idle_timeout(self) -> Event | str | None:
        """The next event; a connection that stays silent with no work in progress times out.

        A client waiting for a long synthesis sends nothing, so silence only counts while
        the writer has nothing to do (half-open and forgotten connections).
        """
        timeout = self._settings.idle_timeout
        if not timeout:
            return await self._read_event()
        read = asyncio.ensure_future(self._read_event())
        try:
            while True:
                done, _ = await asyncio.wait({read}, timeout=timeout)
                if done:
                    return read.result()
                if self._jobs.empty() and not self._working:
                    raise asyncio.TimeoutError()
        finally:
            if not read.done():
                read.cancel()

    async def _read_event(self) -> Event | str | None:
        """One event, or a message saying why the event is unusable, or None at end of stream."""
        try:
            line = await self.reader.readline()
        except ValueError as err:  # line longer than the stream limit: framing lost
            raise ProtocolError(f"Event header too long: {err}") from None
        if not line:
            return None
        if not line.endswith(b"\n"):
            return None  # client closed mid-line
        try:
            header = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return "Event header is not valid JSON"
        if not isinstance(header, dict):
            return "Event header must be a JSON object"
        data_length = self._length(header, "data_length")
        payload_length = self._length(header, "payload_length")
        data = header.get("data") or {}
        if data_length:
            extra = await self.reader.readexactly(data_length)
            try:
                extra_data = json.loads(extra)
            except (ValueError, UnicodeDecodeError):
                return "Event data is not valid JSON"
            if not isinstance(extra_data, dict) or not isinstance(data, dict):
                return "Event data must be a JSON object"
            data = {**data, **extra_data}
        payload = await self.reader.readexactly(payload_length) if payload_length else None
        event_type = header.get("type")
        if not isinstance(event_type, str) or not event_type:
            return "Event has no type"
        if not isinstance(data, dict):
            return "Event data must be a JSON object"
        return Event(type=event_type, data=data, payload=payload)

    @staticmethod
    def _length(header: dict[str, object], key: str) -> int:
        value = header.get(key)
        if value is None:
            return 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ProtocolError(f"Invalid {key}: {value!r}")
        if value > MAX_EVENT_BYTES:
            raise ProtocolError(f"{key} {value} exceeds the limit of {MAX_EVENT_BYTES} bytes")
        return value

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._dispatch(event)
        except SynthesisError as err:
            await self._send_error(str(err), err.code)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            await self._send_error(f"Malformed {event.type!r} event: {err!r}", "bad-event")
        return True

    async def _dispatch(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.write_event(self._info_event)
        elif Synthesize.is_type(event.type):
            synthesize = Synthesize.from_event(event)
            if self._streaming:
                # Home Assistant repeats the whole text as a plain synthesize inside a
                # stream for old servers; the stream already speaks it.
                _LOGGER.debug("Ignoring compatibility synthesize inside a stream")
                return
            if not isinstance(synthesize.text, str):
                raise TypeError("text must be a string")
            text = self._synthesizer.clean_text(synthesize.text)
            voice = self._resolve(synthesize.voice)
            self._synthesizer.check_text(text)
            await self._jobs.put(_Job("synthesize", text, voice))
        elif SynthesizeStart.is_type(event.type):
            start = SynthesizeStart.from_event(event)
            if self._streaming:
                raise ValueError("synthesize-start while a stream is already open")
            self._streaming = True
            self._stream_buffer = ""
            self._stream_failed = False
            try:
                voice = self._resolve(start.voice)
            except SynthesisError:
                self._stream_failed = True
                raise
            await self._jobs.put(_Job("stream-start", voice=voice))
        elif SynthesizeChunk.is_type(event.type):
            chunk = SynthesizeChunk.from_event(event)
            if not self._streaming:
                raise ValueError("synthesize-chunk without synthesize-start")
            if not isinstance(chunk.text, str):
                raise TypeError("text must be a string")
            if self._stream_failed:
                return
            self._stream_buffer += self._synthesizer.clean_text(chunk.text)
            self._synthesizer.check_text(self._stream_buffer, allow_empty=True)
            complete, self._stream_buffer = complete_prefix(self._stream_buffer)
            if complete.strip():
                await self._jobs.put(_Job("stream-text", complete))
        elif SynthesizeStop.is_type(event.type):
            if not self._streaming:
                raise ValueError("synthesize-stop without synthesize-start")
            self._streaming = False
            rest, self._stream_buffer = self._stream_buffer, ""
            if rest.strip() and not self._stream_failed:
                await self._jobs.put(_Job("stream-text", rest))
            await self._jobs.put(_Job("stream-stop", request_failed=self._stream_failed))
        else:
            await self._send_error(f"Unexpected event type {event.type!r}", "unexpected-event")

    def _resolve(self, voice: SynthesizeVoice | None) -> ResolvedVoice:
        request = VoiceRequest()
        if voice is not None:
            request = VoiceRequest(voice.name, voice.language, voice.speaker)
        return self._synthesizer.resolve_voice(request)

    # -- writing ---------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            self._working = True
            try:
                await self._do(job)
            except SynthesisError as err:
                await self._send_error(str(err), err.code)
            except ConnectionError as err:
                _LOGGER.debug("Client went away: %s", err)
                return
            except Exception:  # noqa: BLE001 — one bad request must not end the connection's service
                _LOGGER.exception("Unexpected failure serving %s", job.kind)
                await self._send_error("Internal error while synthesizing; see the server log", "internal-error")
            finally:
                self._working = False

    async def _do(self, job: _Job) -> None:
        if job.kind == "synthesize":
            assert job.voice is not None
            rate = job.voice.sample_rate
            with self._synthesizer.admit():  # busy → error before any audio-start
                await self.write_event(AudioStart(rate=rate, width=PCM_WIDTH, channels=PCM_CHANNELS).event())
                # On failure the error event ends the exchange instead of audio-stop.
                await self._speak(job.text, job.voice, rate)
                await self.write_event(AudioStop().event())
        elif job.kind == "stream-start":
            self._stream_voice = job.voice
            self._stream_rate = None
        elif job.kind == "stream-text":
            if self._stream_voice is None:
                return
            with self._synthesizer.admit():
                await self._ensure_stream_started()
                assert self._stream_rate is not None
                await self._speak(job.text, self._stream_voice, self._stream_rate)
        elif job.kind == "stream-stop":
            if not job.request_failed:
                await self._ensure_stream_started()
                await self.write_event(AudioStop().event())
            self._stream_voice = None
            self._stream_rate = None
            await self.write_event(SynthesizeStopped().event())

    async def _ensure_stream_started(self) -> None:
        if self._stream_rate is None and self._stream_voice is not None:
            self._stream_rate = self._stream_voice.sample_rate
            await self.write_event(AudioStart(rate=self._stream_rate, width=PCM_WIDTH, channels=PCM_CHANNELS).event())

    async def _speak(self, text: str, voice: ResolvedVoice, rate: int) -> None:
        step = self._settings.samples_per_chunk
        async for chunk in self._synthesizer.stream(text, voice):
            samples = resample(chunk.samples, chunk.sample_rate, rate)
            for start in range(0, len(samples), step):
                pcm = float_to_pcm16(samples[start : start + step])
                await self.write_event(
                    WyomingAudioChunk(rate=rate, width=PCM_WIDTH, channels=PCM_CHANNELS, audio=pcm).event()
                )

    async def _send_error(self, text: str, code: str) -> None:
        _LOGGER.warning("Client error (%s): %s", code, text)
        try:
            await self.write_event(Error(text=text, code=code).event())
        except ConnectionError:
            pass


def handler_factory(
    synthesizer: Synthesizer, settings: WyomingSettings
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], WyomingEventHandler]:
    info = build_info(synthesizer)

    def make(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> WyomingEventHandler:
        return WyomingEventHandler(synthesizer, settings, info, reader, writer)

    return make
