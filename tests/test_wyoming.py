"""The Wyoming door against a real server process with the real default voice."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from conftest import ServerProcess, describe, exchange, speech_like

QUESTION = "你真的要去银行取钱吗？"
PARAGRAPH = "客厅温度二十三度，湿度百分之六十。今天晚上会下小雨，出门记得带伞。明天早上七点提醒你开会。"


async def test_describe_lists_the_default_voice(server: ServerProcess) -> None:
    info = Info.from_event(await describe(server.port))
    assert len(info.tts) == 1
    program = info.tts[0]
    assert program.supports_synthesize_streaming is True
    assert program.installed and program.version
    voices = {v.name: v for v in program.voices}
    assert "zh_CN-baker" in voices
    assert {"zh_CN", "zh"} <= set(voices["zh_CN-baker"].languages)


async def test_synthesize_returns_speech(server: ServerProcess) -> None:
    received = await exchange(server.port, Synthesize(text=QUESTION).event())
    assert received.types[0] == "audio-start"
    assert received.types[-1] == "audio-stop"
    assert received.types.count("audio-start") == 1
    start = received.first("audio-start")
    assert (start.data["rate"], start.data["width"], start.data["channels"]) == (24000, 2, 1)
    # Ten syllables of ordinary speech take between one and four seconds.
    assert 1.0 < received.duration < 4.0
    assert speech_like(received.audio, received.rate)


async def test_synthesize_by_name_and_language(server: ServerProcess) -> None:
    for voice in (SynthesizeVoice(name="zh_CN-baker"), SynthesizeVoice(language="zh"), SynthesizeVoice(language="cmn")):
        received = await exchange(server.port, Synthesize(text="你好。", voice=voice).event())
        assert received.types[-1] == "audio-stop", received.events
        assert received.rate == 24000


async def test_long_text_streams_sentence_by_sentence(server: ServerProcess) -> None:
    client = AsyncTcpClient("127.0.0.1", server.port)
    await client.connect()
    try:
        await client.write_event(Synthesize(text=PARAGRAPH * 3).event())
        arrivals: list[float] = []
        while True:
            event = await asyncio.wait_for(client.read_event(), 60)
            assert event is not None
            if event.type == "audio-chunk":
                arrivals.append(time.monotonic())
            if event.type == "audio-stop":
                break
    finally:
        await client.disconnect()
    # Audio for early sentences leaves while later ones are still being synthesized:
    # chunks come in several bursts spread over time, not all at once at the end.
    assert len(arrivals) > 20
    assert arrivals[-1] - arrivals[0] > 0.1


async def test_home_assistant_streaming_sequence(server: ServerProcess) -> None:
    text = "今天天气很好。明天会下雨，记得带伞。"
    plain = await exchange(server.port, Synthesize(text=text).event())
    streamed = await exchange(
        server.port,
        SynthesizeStart().event(),
        SynthesizeChunk(text="今天天气").event(),
        SynthesizeChunk(text="很好。明天会").event(),
        SynthesizeChunk(text="下雨，记得带伞。").event(),
        # Home Assistant's compatibility copy of the whole text: must not be spoken again.
        Synthesize(text=text).event(),
        SynthesizeStop().event(),
        until=("synthesize-stopped", "error"),
    )
    types = streamed.types
    assert "error" not in types
    assert types.count("audio-start") == 1 and types.count("audio-stop") == 1
    assert types[-1] == "synthesize-stopped"
    assert types.index("audio-stop") < types.index("synthesize-stopped")
    # Same sentences once: the duration matches the plain request, not twice it.
    assert abs(streamed.duration - plain.duration) < 0.15 * plain.duration


async def test_streaming_flushes_text_without_final_punctuation(server: ServerProcess) -> None:
    streamed = await exchange(
        server.port,
        SynthesizeStart(voice=SynthesizeVoice(name="zh_CN-baker")).event(),
        SynthesizeChunk(text="打开客厅的灯").event(),
        SynthesizeStop().event(),
        until=("synthesize-stopped", "error"),
    )
    assert streamed.types[-1] == "synthesize-stopped"
    assert streamed.duration > 0.5


async def test_describe_answers_quickly_while_others_synthesize(server: ServerProcess) -> None:
    busy = [asyncio.create_task(exchange(server.port, Synthesize(text=PARAGRAPH * 4).event())) for _ in range(2)]
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await describe(server.port)
    latency = time.monotonic() - started
    results = await asyncio.gather(*busy)
    assert latency < 1.0, f"describe took {latency:.3f} s while busy"
    assert all(r.types[-1] == "audio-stop" for r in results)


async def test_empty_text_is_an_error(server: ServerProcess) -> None:
    for text in ("", "   ", "\n"):
        received = await exchange(server.port, Synthesize(text=text).event())
        assert received.types == ["error"]
        assert "empty" in received.events[0].data["text"].lower()


async def test_unknown_voice_is_an_error(server: ServerProcess) -> None:
    received = await exchange(server.port, Synthesize(text="你好", voice=SynthesizeVoice(name="no-such-voice")).event())
    assert received.types == ["error"]
    assert received.events[0].data["code"] == "unknown-voice"
    assert "no-such-voice" in received.events[0].data["text"]


async def test_too_long_text_is_an_error(server: ServerProcess) -> None:
    received = await exchange(server.port, Synthesize(text="好" * 6000).event())
    assert received.types == ["error"]
    assert received.events[0].data["code"] == "text-too-long"


async def _raw(port: int, payload: bytes, expect: int = 1, timeout: float = 10) -> list[dict[str, object]]:
    """Send raw bytes and read ``expect`` JSON event headers back (with their data)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    events: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(events) < expect:
                line = await reader.readline()
                if not line:
                    break
                header = json.loads(line)
                if header.get("data_length"):
                    header["data"] = json.loads(await reader.readexactly(header["data_length"]))
                if header.get("payload_length"):
                    await reader.readexactly(header["payload_length"])
                events.append(header)
    finally:
        writer.close()
    return events


@pytest.mark.parametrize(
    "line",
    [
        b"this is not json",
        b'["a list"]',
        b'{"data": {}}',
        b'{"type": "synthesize", "data": {"text": 42}}',
        b'{"type": "synthesize", "data": {}}',
        b'{"type": "synthesize", "data": {"text": "\\u4f60", "voice": "zh_CN-baker"}}',
    ],
)
async def test_a_malformed_request_gets_an_error_and_the_end(server: ServerProcess, line: bytes) -> None:
    """The client waits for audio that will not come: the error, then our side closes at once
    (Home Assistant ignores errors and would wait for audio-stop)."""
    started = time.monotonic()
    events = await _raw(server.port, line + b"\n", expect=5)
    assert [e["type"] for e in events] == ["error"]
    assert isinstance(events[0]["data"], dict) and events[0]["data"]["text"]
    assert time.monotonic() - started < 2.0


async def test_stray_events_get_errors_and_the_connection_survives(server: ServerProcess) -> None:
    """Events nobody waits on are answered with an error, and the connection goes on serving."""
    payload = (
        b'{"type": "no-such-event"}\n'
        b'{"type": "synthesize-chunk", "data": {"text": "x"}}\n'
        b'{"type": "synthesize-stop"}\n'
        b'{"type": "describe"}\n'
    )
    events = await _raw(server.port, payload, expect=4)
    assert [e["type"] for e in events] == ["error"] * 3 + ["info"]
    assert [e["data"]["code"] for e in events[:3]] == ["unexpected-event", "bad-event", "bad-event"]


async def test_broken_framing_closes_only_that_connection(server: ServerProcess) -> None:
    events = await _raw(server.port, b'{"type": "synthesize", "data_length": -5}\n', expect=2)
    assert [e["type"] for e in events] == ["error"]
    events = await _raw(server.port, b'{"type": "synthesize", "payload_length": 99999999999}\n', expect=2)
    assert [e["type"] for e in events] == ["error"]
    # Everyone else is still served.
    assert (await describe(server.port)).type == "info"


async def test_client_vanishing_mid_stream_does_not_hurt_the_next(server: ServerProcess) -> None:
    for _ in range(3):
        client = AsyncTcpClient("127.0.0.1", server.port)
        await client.connect()
        await client.write_event(Synthesize(text=PARAGRAPH * 5).event())
        while True:
            event = await client.read_event()
            assert event is not None
            if event.type == "audio-chunk":
                break
        await client.disconnect()
    received = await exchange(server.port, Synthesize(text=QUESTION).event())
    assert received.types[-1] == "audio-stop"
    assert speech_like(received.audio, received.rate)
    assert server.process.poll() is None


async def test_a_client_resetting_after_describe_leaves_no_traceback(server: ServerProcess) -> None:
    """A health check that sends describe and resets at once (SO_LINGER 0) must not leave an
    unhandled ConnectionResetError in the server's log."""
    import socket
    import struct

    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.sendall(b'{"type": "describe"}\n' * 50)
    await asyncio.sleep(0.5)
    assert (await describe(server.port)).type == "info"
    assert "Task exception was never retrieved" not in server.log
    assert "Traceback" not in server.log
