"""Wyoming door: protocol events ⇄ synthesis requests, one handler per connection.

Reading and writing are split: the read loop answers ``describe`` at once and
queues synthesis work; one writer task per connection runs that work in order,
so a long synthesis never delays ``describe`` and a client that leaves cancels
what it queued. How each exchange ends is spelled out on the handler class.
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
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from .. import __version__
from ..audio import PCM_CHANNELS, PCM_WIDTH, AudioChunk, float_to_pcm16, resample
from ..frontend.segment import complete_prefix
from ..synthesis import BadFieldError, BadRequestError, ResolvedVoice, SynthesisError, Synthesizer, VoiceRequest, nothing_spoken

_LOGGER = logging.getLogger(__name__)

MAX_EVENT_BYTES = 1 << 20
"""Largest JSON header, data or payload accepted; larger means a broken or hostile client."""


class ProtocolError(Exception):
    """The client broke the framing; after this the connection cannot be trusted."""


_POLL_SECONDS = 0.5
"""How often the reader re-checks its silence limit (which depends on the connection's state)."""
_DRAIN_SECONDS = 5.0
"""After we hung up, how long we read and drop what the client still sends before closing."""
_STREAM_EVENTS = ("synthesize-start", "synthesize-chunk", "synthesize-stop", "synthesize")


@dataclass(frozen=True)
class WyomingSettings:
    samples_per_chunk: int = 1024
    idle_timeout: float | None = None
    """Close a connection silent this long with no work in progress and no stream open; None: never."""
    stream_timeout: float | None = 300.0
    """End an open stream whose client sends nothing for this long (error, then synthesize-stopped)."""


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
class _Exchange:
    """One request as the client sees it: a plain ``synthesize``, or a stream from
    ``synthesize-start`` to ``synthesize-stop``. The reader sets the voice; the rest is the
    writer task's."""

    voice: ResolvedVoice | None
    """None: the stream was refused at its start (unknown voice)."""
    rate: int | None = None
    """Set when ``audio-start`` went out, right before the first chunk; fixes the format."""
    chunks: int = 0
    ended: bool = False
    """The client has been told the exchange is over (``audio-stop`` or ``synthesize-stopped``)."""


@dataclass
class _Job:
    """One unit of work for the writer task, in arrival order."""

    kind: str  # "synthesize" | "reject" | "stream-text" | "stream-fail" | "stream-stop" | "hang-up"
    exchange: _Exchange | None = None
    text: str = ""
    error: SynthesisError | None = None


class StreamTimeoutError(SynthesisError):
    code = "stream-timeout"


class WyomingEventHandler(AsyncEventHandler):
    """How an exchange ends, whatever happens, so that every client returns at once:

    * plain ``synthesize``: ``audio-start``, chunks, ``audio-stop``; on any error an ``error``
      event and then the end of the connection (our side is shut, what the client still sends
      is read and dropped). Home Assistant ignores ``error`` events and would otherwise wait
      for an ``audio-stop`` that never comes.
    * stream: audio of each finished sentence as it comes, then ``audio-stop`` and
      ``synthesize-stopped``; on an error, one ``error`` (plus ``audio-stop`` if audio had
      started) and ``synthesize-stopped`` at once. The rest of that stream is read and dropped,
      with no second error.
    * ``audio-start`` only goes out with a chunk behind it; a text with nothing to say is
      answered with a short silence (``synthesis.nothing_spoken``), never an empty stream.
    """

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
        # Reader side of the open stream: None when no stream is open.
        self._stream: _Exchange | None = None
        self._stream_refused = False  # an error was queued for it; its further text is dropped
        self._stream_buffer = ""  # text after the last finished sentence
        self._stream_text = ""  # all of it, checked like the text of a plain synthesize
        # Set once the writer has ended the conversation (error on a plain synthesize, or a hang-up).
        self._hung_up = asyncio.Event()

    # -- reading ---------------------------------------------------------------

    async def run(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="wyoming synthesis writer")
        try:
            while True:
                try:
                    event = await self._next_event()
                except ProtocolError as err:
                    await self._send_error(str(err), "protocol-error")
                    break
                except (ConnectionError, asyncio.IncompleteReadError):
                    break
                if event is None:
                    break
                if self._hung_up.is_set():
                    continue  # read and dropped: closing now, with data unread, could reset the connection
                if isinstance(event, str):  # a malformed but framed event: end what the client waits on
                    if self._stream is not None:
                        await self._fail_stream(BadRequestError(event))
                    else:
                        await self._queue(_Job("reject", error=BadRequestError(event)))
                    continue
                try:
                    if not await self.handle_event(event):
                        break
                except ConnectionError:  # the client left while we answered (a describe, say)
                    break
        finally:
            # The client is gone: whatever it queued is cancelled, down to the worker threads.
            if self._worker is not None:
                self._worker.cancel()
                await asyncio.gather(self._worker, return_exceptions=True)
            self.writer.close()

    async def _next_event(self) -> Event | str | None:
        """The next event, a message saying why it is unusable, or None when the conversation is over.

        Silence from the client only counts while this connection has no work in progress (a
        client waiting for a long synthesis sends nothing). Its limit depends on the state: the
        idle timeout normally, the longer stream timeout while a stream is open (an LLM may pause
        between sentences), a few seconds once we have hung up.
        """
        loop = asyncio.get_running_loop()
        read = asyncio.ensure_future(self._read_event())
        hung_up = asyncio.ensure_future(self._hung_up.wait())
        quiet_since = loop.time()
        try:
            while True:
                waiting_for = {read} if hung_up.done() else {read, hung_up}
                done, _ = await asyncio.wait(waiting_for, timeout=_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                if read in done:
                    return read.result()
                if hung_up in done or self._working or not self._jobs.empty():
                    quiet_since = loop.time()
                    continue
                if self._hung_up.is_set():
                    if loop.time() - quiet_since > _DRAIN_SECONDS:
                        return None
                elif self._stream is not None:
                    limit = self._settings.stream_timeout
                    if limit and loop.time() - quiet_since > limit:
                        await self._fail_stream(StreamTimeoutError(
                            f"No text for {limit:g} s inside an open stream (synthesize-start without synthesize-stop)"
                        ))
                        self._stream = None
                        await self._queue(_Job("hang-up"))
                        quiet_since = loop.time()
                else:
                    limit = self._settings.idle_timeout
                    if limit and loop.time() - quiet_since > limit:
                        return None
        finally:
            for future in (read, hung_up):
                if not future.done():
                    future.cancel()

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
            await self._refuse(event.type, err)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            await self._refuse(event.type, BadRequestError(f"Malformed {event.type!r} event: {err!r}"))
        return True

    async def _refuse(self, event_type: str, err: SynthesisError) -> None:
        """An error in answer to ``event_type``, ending whatever exchange the client waits on."""
        if Synthesize.is_type(event_type) and self._stream is None:
            await self._queue(_Job("reject", error=err))
        elif self._stream is not None and event_type in _STREAM_EVENTS:
            await self._fail_stream(err)
        else:  # nothing waits on it (a stray chunk or stop, an unknown type): say so, carry on
            await self._send_error(str(err), err.code)

    async def _dispatch(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.write_event(self._info_event)
        elif Synthesize.is_type(event.type):
            if self._stream is not None:
                # Home Assistant repeats the whole text as a plain synthesize inside a
                # stream for old servers; the stream already speaks it.
                _LOGGER.debug("Ignoring compatibility synthesize inside a stream")
                return
            text = self._synthesizer.accept_text(event.data.get("text"))
            voice = self._resolve(event.data.get("voice"))
            await self._queue(_Job("synthesize", _Exchange(voice), text))
        elif SynthesizeStart.is_type(event.type):
            if self._stream is not None:
                raise BadRequestError("synthesize-start while a stream is already open")
            self._stream = _Exchange(voice=None)
            self._stream_refused = False
            self._stream_buffer = self._stream_text = ""
            self._stream.voice = self._resolve(event.data.get("voice"))
        elif SynthesizeChunk.is_type(event.type):
            if self._stream is None:
                raise BadRequestError("synthesize-chunk without synthesize-start")
            if self._stream_refused:
                return
            text = event.data.get("text")
            if not isinstance(text, str):
                raise BadFieldError(f"The text of a synthesize-chunk must be a string, got {type(text).__name__}")
            text = self._synthesizer.clean_text(text)
            self._stream_text += text
            self._synthesizer.check_text(self._stream_text, allow_empty=True)
            complete, self._stream_buffer = complete_prefix(self._stream_buffer + text)
            if complete.strip():
                await self._queue(_Job("stream-text", self._stream, complete))
        elif SynthesizeStop.is_type(event.type):
            if self._stream is None:
                raise BadRequestError("synthesize-stop without synthesize-start")
            try:
                if not self._stream_refused:
                    self._synthesizer.check_text(self._stream_text)  # a stream of nothing is empty text
                    if self._stream_buffer.strip():
                        await self._queue(_Job("stream-text", self._stream, self._stream_buffer))
                    await self._queue(_Job("stream-stop", self._stream))
            except SynthesisError as err:
                await self._fail_stream(err)
            finally:
                self._stream, self._stream_buffer, self._stream_text = None, "", ""
        else:
            await self._send_error(f"Unexpected event type {event.type!r}", "unexpected-event")

    async def _fail_stream(self, err: SynthesisError) -> None:
        """The open stream cannot go on: its error goes out after the audio already queued for it."""
        if self._stream is None or self._stream_refused:
            return
        self._stream_refused = True
        self._stream_buffer = self._stream_text = ""
        await self._queue(_Job("stream-fail", self._stream, error=err))

    async def _queue(self, job: _Job) -> None:
        if not self._hung_up.is_set():
            await self._jobs.put(job)

    def _resolve(self, voice: object) -> ResolvedVoice:
        """The voice of a synthesize or synthesize-start event's ``voice`` field."""
        if voice is None:
            voice = {}
        if not isinstance(voice, dict):
            raise BadFieldError(f"The voice must be an object with name, language and speaker, got {voice!r}")
        return self._synthesizer.resolve_voice(VoiceRequest(voice.get("name"), voice.get("language"), voice.get("speaker")))

    # -- writing ---------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            if self._hung_up.is_set():
                continue  # the conversation is over; what was queued is dropped
            self._working = True
            try:
                await self._do(job)
            except ConnectionError as err:
                _LOGGER.debug("Client went away: %s", err)
                return
            finally:
                self._working = False

    async def _do(self, job: _Job) -> None:
        exchange = job.exchange
        try:
            if job.kind == "reject":
                assert job.error is not None
                raise job.error
            if job.kind == "hang-up":
                await self._hang_up()
                return
            assert exchange is not None
            if exchange.ended:
                return  # a stream that already failed: the rest of it is dropped
            if job.kind == "synthesize":
                with self._synthesizer.admit():  # busy → error before any audio-start
                    await self._speak(exchange, job.text, pad_silence=True)
                await self._end_audio(exchange)
            elif job.kind == "stream-text":
                with self._synthesizer.admit():
                    await self._speak(exchange, job.text, pad_silence=False)
            elif job.kind == "stream-fail":
                assert job.error is not None
                raise job.error
            elif job.kind == "stream-stop":
                if not exchange.chunks:
                    assert exchange.voice is not None
                    await self._send_audio(exchange, nothing_spoken(exchange.voice.sample_rate))
                await self._end_audio(exchange)
                await self.write_event(SynthesizeStopped().event())
        except ConnectionError:
            raise
        except Exception as err:  # noqa: BLE001 — one bad request must not end the server's service
            if not isinstance(err, SynthesisError):
                _LOGGER.exception("Unexpected failure serving %s", job.kind)
                err = SynthesisError("Internal error while synthesizing; see the server log")
                err.code = "internal-error"
            await self._send_error(str(err), err.code)
            if exchange is not None and job.kind.startswith("stream"):
                # The client waits for synthesize-stopped: close the audio it has, then the stream.
                await self._end_audio(exchange)
                await self.write_event(SynthesizeStopped().event())
                exchange.ended = True
            else:
                await self._hang_up()

    async def _speak(self, exchange: _Exchange, text: str, pad_silence: bool) -> None:
        assert exchange.voice is not None
        async for chunk in self._synthesizer.stream(text, exchange.voice, pad_silence=pad_silence):
            await self._send_audio(exchange, chunk)

    async def _send_audio(self, exchange: _Exchange, chunk: AudioChunk) -> None:
        """Audio for the client; ``audio-start`` goes out with the first chunk, fixing the format."""
        if not len(chunk.samples):
            return
        if exchange.rate is None:
            assert exchange.voice is not None
            exchange.rate = exchange.voice.sample_rate
            await self.write_event(AudioStart(rate=exchange.rate, width=PCM_WIDTH, channels=PCM_CHANNELS).event())
        samples = resample(chunk.samples, chunk.sample_rate, exchange.rate)
        step = self._settings.samples_per_chunk
        for start in range(0, len(samples), step):
            pcm = float_to_pcm16(samples[start : start + step])
            await self.write_event(
                WyomingAudioChunk(rate=exchange.rate, width=PCM_WIDTH, channels=PCM_CHANNELS, audio=pcm).event()
            )
            exchange.chunks += 1

    async def _end_audio(self, exchange: _Exchange) -> None:
        if exchange.rate is not None and not exchange.ended:
            await self.write_event(AudioStop().event())
        exchange.ended = True

    async def _hang_up(self) -> None:
        """End the conversation so that any client sees it: shut our sending side.

        Only our side: what the client still sends is read and dropped until it closes
        (closing with unread data would reset the connection and could lose the error event).
        """
        self._hung_up.set()
        if self.writer.can_write_eof():
            self.writer.write_eof()
        else:
            self.writer.close()

    async def _send_error(self, text: str, code: str) -> None:
        _LOGGER.warning("Client error (%s): %s", code, text)
        if self._hung_up.is_set():
            return  # our side is shut: nothing more can be sent
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
