"""Every exchange ends in a way Home Assistant sees, at once — checked with a client that does
exactly what Home Assistant's Wyoming TTS entity does (tests/ha_wyoming_client.py): it ignores
``error`` events and has no timeout of its own, so a server that only sends an error and waits
would hang it (it did: 120 s per error, until the idle timeout closed the connection)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import numpy as np
import pytest

from conftest import ServerProcess, describe, speech_like, start_server, stop_server
from ha_wyoming_client import HaResult, llm_pieces, plain_request, streaming_request
from wyoming_indextts.synthesis import NOTHING_SPOKEN_SECONDS

IDLE_TIMEOUT = 2.0
STREAM_TIMEOUT = 6.0
MAX_CHARS = 5000
ANSWER_WITHIN = 5.0  # the bound for an error to reach Home Assistant
HANG = 30.0  # what the tests wait before calling it a hang

SENTENCES = "客厅温度二十三度，湿度百分之六十。"


@pytest.fixture(scope="module")
def ha_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("exchanges"),
        "--idle-timeout", str(IDLE_TIMEOUT), "--stream-timeout", str(STREAM_TIMEOUT), "--max-text-chars", str(MAX_CHARS),
    )
    yield server
    stop_server(server)


async def _bounded(coro: object) -> HaResult:
    async with asyncio.timeout(HANG):
        return await coro  # type: ignore[misc]


async def _one_piece(text: str) -> "asyncio.AsyncIterator[str]":  # type: ignore[name-defined]
    yield text


def _pieces(text: str, size: int) -> list[tuple[float, str]]:
    return [(0.0, text[i : i + size]) for i in range(0, len(text), size)]


ERRORS = {
    "spaces-only": ("   ", None),
    "unknown-voice": ("你好。", "no-such-voice"),
    "too-long": ("好" * (MAX_CHARS + 1000), None),
}


@pytest.mark.parametrize("case", list(ERRORS))
async def test_plain_request_errors_reach_home_assistant_at_once(ha_server: ServerProcess, case: str) -> None:
    message, voice = ERRORS[case]
    result = await _bounded(plain_request(ha_server.port, message, voice))
    assert result.wav is None, "Home Assistant must see a failure (the connection closing), not audio"
    # At once, not when the idle timeout closes the connection (that took 120 s by default).
    assert result.seconds < IDLE_TIMEOUT / 2
    assert result.event_types == ["error"]
    assert (await describe(ha_server.port)).type == "info"


@pytest.mark.parametrize("case", list(ERRORS))
async def test_streaming_errors_reach_home_assistant_at_once(ha_server: ServerProcess, case: str) -> None:
    message, voice = ERRORS[case]
    result = await _bounded(streaming_request(ha_server.port, llm_pieces(_pieces(message, 500)), voice))
    assert result.seconds < ANSWER_WITHIN
    assert result.event_types.count("error") == 1
    assert result.event_types[-1] == "synthesize-stopped"
    assert "audio-start" not in result.event_types  # nothing was speakable before the error
    assert (await describe(ha_server.port)).type == "info"


async def test_a_stream_failing_half_way_ends_its_audio_once(ha_server: ServerProcess) -> None:
    """Sentences are spoken as they come; past the limit: one error, audio-stop, synthesize-stopped."""
    message = SENTENCES * (MAX_CHARS // len(SENTENCES) + 20)
    result = await _bounded(streaming_request(ha_server.port, llm_pieces(_pieces(message, 400)), None))
    types = result.event_types
    assert types.count("error") == 1
    assert types[-3:] == ["error", "audio-stop", "synthesize-stopped"]
    assert types.count("audio-start") == 1 and types.count("audio-stop") == 1
    assert result.duration > 1.0  # what was spoken before the limit reached Home Assistant


@pytest.mark.parametrize("text", ["。。。", "？！", "……", "——"])
async def test_nothing_speakable_gives_a_short_silence_on_both_paths(ha_server: ServerProcess, text: str) -> None:
    plain = await _bounded(plain_request(ha_server.port, text))
    streamed = await _bounded(streaming_request(ha_server.port, _one_piece(text)))
    for result in (plain, streamed):
        assert result.wav is not None and "error" not in result.event_types
        assert "audio-chunk" in result.event_types  # never audio-start + audio-stop with nothing between
        assert result.duration == pytest.approx(NOTHING_SPOKEN_SECONDS, abs=0.05)
    assert streamed.event_types[-1] == "synthesize-stopped"


async def test_slow_llm_stream_outlives_the_idle_timeout(ha_server: ServerProcess) -> None:
    """Text arrives 0.2–3 s apart, 9 s in all (the idle timeout is 2 s): the stream is not cut."""
    pieces = [(0.2, "今天"), (3.0, "天气很好，"), (0.5, "适合"), (2.6, "出门散步。"), (2.8, "记得带上水杯"), (0.3, "。")]
    streamed = await _bounded(streaming_request(ha_server.port, llm_pieces(pieces)))
    plain = await _bounded(plain_request(ha_server.port, "".join(text for _, text in pieces)))
    assert "error" not in streamed.event_types and streamed.event_types[-1] == "synthesize-stopped"
    assert streamed.seconds > sum(delay for delay, _ in pieces) > 2 * IDLE_TIMEOUT
    assert plain.wav is not None
    assert abs(streamed.duration - plain.duration) < 0.2 * plain.duration  # every sentence spoken, once


async def test_voice_option_reaches_the_voice(ha_server: ServerProcess) -> None:
    english = await _bounded(plain_request(ha_server.port, "The garage door has been open for 15 minutes.", "en_US-joe-medium"))
    chinese = await _bounded(streaming_request(ha_server.port, _one_piece(SENTENCES), "zh_CN-baker"))
    assert english.wav is not None and english.rate == 22050 and english.duration > 1.5
    assert chinese.wav is not None and chinese.rate == 24000 and chinese.duration > 1.5


async def _raw_until_closed(port: int, lines: list[bytes], pause: float = 0.0, timeout: float = HANG) -> tuple[list[dict[str, object]], float]:
    """Write event lines (``pause`` apart), then read every header until the server closes."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    headers: list[dict[str, object]] = []
    try:
        for line in lines:
            writer.write(line + b"\n")
            await writer.drain()
            await asyncio.sleep(pause)
        async with asyncio.timeout(timeout):
            while line := await reader.readline():
                header = json.loads(line)
                extra = await reader.readexactly(int(header.get("data_length") or 0))
                if extra:
                    header["data"] = json.loads(extra)
                await reader.readexactly(int(header.get("payload_length") or 0))
                headers.append(header)
    finally:
        writer.close()
    return headers, loop.time() - started


async def test_a_failed_stream_stays_failed(ha_server: ServerProcess) -> None:
    """Refused at its start; the client goes on sending text and its stop: no second error, no second end."""
    lines = [
        b'{"type": "synthesize-start", "data": {"voice": {"name": "no-such-voice"}}}',
        b'{"type": "synthesize-chunk", "data": {"text": "\\u4f60\\u597d\\u3002"}}',
        b'{"type": "synthesize", "data": {"text": "\\u4f60\\u597d\\u3002"}}',
        b'{"type": "synthesize-stop"}',
        b'{"type": "describe"}',
    ]
    reader, writer = await asyncio.open_connection("127.0.0.1", ha_server.port)
    types: list[str] = []
    try:
        writer.write(b"\n".join(lines) + b"\n")
        await writer.drain()
        async with asyncio.timeout(HANG):
            while not types or types[-1] != "info":
                header = json.loads(await reader.readline())
                await reader.readexactly(int(header.get("data_length") or 0) + int(header.get("payload_length") or 0))
                types.append(str(header["type"]))
    finally:
        writer.close()
    assert types == ["error", "synthesize-stopped", "info"]  # and the connection still serves


async def test_a_silent_open_stream_is_ended_after_the_stream_timeout(ha_server: ServerProcess) -> None:
    lines = [b'{"type": "synthesize-start"}', b'{"type": "synthesize-chunk", "data": {"text": "\\u4f60\\u597d\\u3002"}}']
    headers, seconds = await _raw_until_closed(ha_server.port, lines)
    types = [h["type"] for h in headers]
    assert types[0] == "audio-start" and types[-3:] == ["error", "audio-stop", "synthesize-stopped"]
    assert headers[-3]["data"]["code"] == "stream-timeout"  # type: ignore[index]
    assert STREAM_TIMEOUT < seconds < STREAM_TIMEOUT + ANSWER_WITHIN


async def test_an_idle_connection_still_closes_after_the_idle_timeout(ha_server: ServerProcess) -> None:
    headers, seconds = await _raw_until_closed(ha_server.port, [b'{"type": "describe"}'])
    assert [h["type"] for h in headers] == ["info"]
    assert IDLE_TIMEOUT <= seconds < IDLE_TIMEOUT + 2


async def test_speech_still_flows_after_all_of_that(ha_server: ServerProcess) -> None:
    result = await _bounded(plain_request(ha_server.port, SENTENCES))
    assert result.wav is not None and result.event_types[0] == "audio-start" and result.event_types[-1] == "audio-stop"
    samples = np.frombuffer(result.wav[44:], dtype="<i2").astype(np.float32) / 32768
    assert speech_like(samples, result.rate)
    assert ha_server.process.poll() is None
