"""What Home Assistant's Wyoming TTS entity does on the wire, restated for the tests.

Facts from the newest release's ``homeassistant/components/wyoming/tts.py`` (2025/2026), which
these two functions reproduce event for event:

* **Plain request** (``async_get_tts_audio``; also all 2024.x releases): sends one
  ``synthesize`` (text, and ``voice`` only when a voice option is set — never a language),
  then reads until ``audio-stop``. A closed connection means failure. ``error`` and every
  other event are ignored. The WAV writer is opened at the first ``audio-chunk`` with that
  chunk's format, so an answer without a chunk gives empty bytes, which its ffmpeg cannot
  convert.
* **Streaming request** (``async_stream_tts_audio``, when ``info`` says
  ``supports_synthesize_streaming``): connects, and a background task writes
  ``synthesize-start`` (voice), one ``synthesize-chunk`` per piece of text as the text
  generator (an LLM) yields it, then the whole text as a plain ``synthesize`` "for backwards
  compatibility", then ``synthesize-stop``. The reader turns the first ``audio-start`` into a
  WAV header with zero frames and passes on the payload of every ``audio-chunk`` after it; it
  stops at ``synthesize-stopped`` or when the connection closes, ignoring ``error`` and
  ``audio-stop``.
* Neither path has a timeout of its own: a server that never ends an exchange hangs Home
  Assistant. The tests put their own bound around these calls to see that.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice


@dataclass
class HaResult:
    """What Home Assistant ends up with: WAV bytes (None: it saw a failure) and what it read."""

    wav: bytes | None
    seconds: float
    event_types: list[str] = field(default_factory=list)

    @property
    def frames(self) -> int:
        """Samples after the header (streamed WAV headers say 0 frames, so count the bytes)."""
        if not self.wav:
            return 0
        with wave.open(io.BytesIO(self.wav)) as wav:
            width, rate = wav.getsampwidth(), wav.getframerate()
        return (len(self.wav) - 44) // width if rate else 0

    @property
    def rate(self) -> int:
        assert self.wav
        with wave.open(io.BytesIO(self.wav)) as wav:
            return wav.getframerate()

    @property
    def duration(self) -> float:
        return self.frames / self.rate if self.wav else 0.0


def _voice(name: str | None, speaker: str | None) -> SynthesizeVoice | None:
    return SynthesizeVoice(name=name, speaker=speaker) if name is not None else None


async def plain_request(port: int, message: str, voice: str | None = None, speaker: str | None = None) -> HaResult:
    """``async_get_tts_audio``: one synthesize, read to audio-stop; a close is a failure."""
    started = time.monotonic()
    types: list[str] = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=message, voice=_voice(voice, speaker)).event())
        with io.BytesIO() as wav_io:
            writer: wave.Wave_write | None = None
            while True:
                event = await client.read_event()
                if event is None:
                    return HaResult(None, time.monotonic() - started, types)
                types.append(event.type)
                if AudioStop.is_type(event.type):
                    break
                if AudioChunk.is_type(event.type):
                    chunk = AudioChunk.from_event(event)
                    if writer is None:
                        writer = wave.open(wav_io, "wb")
                        writer.setframerate(chunk.rate)
                        writer.setsampwidth(chunk.width)
                        writer.setnchannels(chunk.channels)
                    writer.writeframes(chunk.audio)
            if writer is not None:
                writer.close()
            return HaResult(wav_io.getvalue(), time.monotonic() - started, types)


async def llm_pieces(pieces: Iterable[tuple[float, str]]) -> AsyncIterator[str]:
    """A text generator as a conversation agent's: each piece after its delay in seconds."""
    for delay, text in pieces:
        await asyncio.sleep(delay)
        yield text


async def streaming_request(
    port: int, message: AsyncIterator[str], voice: str | None = None, speaker: str | None = None
) -> HaResult:
    """``async_stream_tts_audio``: text written by a background task while audio is read."""
    started = time.monotonic()
    types: list[str] = []
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    selected = _voice(voice, speaker)

    async def write() -> None:
        try:
            await client.write_event(SynthesizeStart(voice=selected).event())
            whole = ""
            async for piece in message:
                whole += piece
                await client.write_event(SynthesizeChunk(text=piece).event())
            await client.write_event(Synthesize(text=whole, voice=selected).event())
            await client.write_event(SynthesizeStop().event())
        except OSError:
            pass  # Home Assistant logs "Unexpected disconnection from TTS client" and goes on

    writer = asyncio.create_task(write())
    out = io.BytesIO()
    header_sent = False
    try:
        while (event := await client.read_event()) is not None:
            types.append(event.type)
            if header_sent and AudioChunk.is_type(event.type):
                out.write(AudioChunk.from_event(event).audio)
            elif not header_sent and AudioStart.is_type(event.type):
                start = AudioStart.from_event(event)
                with io.BytesIO() as header:
                    with wave.open(header, "wb") as wav:
                        wav.setframerate(start.rate)
                        wav.setsampwidth(start.width)
                        wav.setnchannels(start.channels)
                    out.write(header.getvalue())
                header_sent = True
            elif SynthesizeStopped.is_type(event.type):
                break
    except OSError:
        pass
    finally:
        await client.disconnect()
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    return HaResult(out.getvalue() or None, time.monotonic() - started, types)
