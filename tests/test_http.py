"""The HTTP door against a running server, through a real HTTP client."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from conftest import ServerProcess, free_port, speech_like, start_server, stop_server
from wyoming_indextts.engines.base import SynthesisConfig, VoiceInfo
from wyoming_indextts.frontend import Frontend, Sentence
from wyoming_indextts.server.http import HttpDoor, HttpSettings
from wyoming_indextts.synthesis import SynthesisSettings, Synthesizer
from wyoming_indextts.voices import VoiceCatalog

LONG = "客厅温度二十三度，湿度百分之六十，空气质量良好。今晚会有小雨，出门记得带伞。" * 4


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    server = start_server(
        tmp_path_factory.mktemp("http"), "--http-uri", f"http://127.0.0.1:{port}", "--max-text-chars", "600",
        "--http-max-files", "3", "--cache-mb", "0",
    )
    yield server, f"http://127.0.0.1:{port}"
    stop_server(server)


async def _synthesize(session: aiohttp.ClientSession, base: str, **body: object) -> tuple[int, dict[str, object]]:
    async with session.post(f"{base}/api/tts/synthesize", json=body) as response:
        return response.status, await response.json()


async def test_voices_health_metrics_and_page(http_server: tuple[ServerProcess, str], session: aiohttp.ClientSession) -> None:
    _, base = http_server
    async with session.get(f"{base}/api/voices") as response:
        voices = {v["name"]: v for v in (await response.json())["voices"]}
    assert {"zh_CN-baker", "en_US-joe-medium", "espeak-ng"} <= set(voices)
    assert voices["zh_CN-baker"]["sample_rate"] == 24000 and voices["zh_CN-baker"]["engine"] == "fastspeech2"
    async with session.get(f"{base}/health") as response:
        health = await response.json()
    assert health["status"] == "ok" and health["uptime"] >= 0 and "zh_CN-baker" in health["voices_loaded"]
    assert {"queue_length", "cache", "fallbacks", "active_requests"} <= set(health)
    async with session.get(f"{base}/metrics") as response:
        metrics = await response.text()
    assert response.headers["Content-Type"].startswith("text/plain") and "indextts_voices_loaded 3.0" in metrics
    async with session.get(f"{base}/") as response:
        page = await response.text()
    assert response.status == 200 and 'id="play"' in page and "/api/tts/synthesize" in page
    assert "Access-Control-Allow-Origin" not in response.headers  # CORS is off by default


@pytest.mark.parametrize("audio_format", ["wav", "ogg", "mp3", "pcm"])
async def test_synthesize_to_a_file_in_every_format(http_server: tuple[ServerProcess, str], session: aiohttp.ClientSession, audio_format: str) -> None:
    _, base = http_server
    status, answer = await _synthesize(session, base, text="欢迎使用语音合成系统。", voice="zh_CN-baker", speed=1.0, format=audio_format)
    assert status == 200, answer
    assert answer["sample_rate"] == 24000 and 1.0 < float(answer["duration"]) < 5.0  # type: ignore[arg-type]
    async with session.get(f"{base}{answer['audio_url']}") as response:
        assert response.status == 200
        data = await response.read()
    if audio_format == "pcm":
        audio, rate = np.frombuffer(data, "<i2").astype(np.float32) / 32768, 24000
    else:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert abs(len(audio) / rate - float(answer["duration"])) < 0.1  # type: ignore[arg-type]
    assert speech_like(audio, rate)


async def test_errors_are_json_with_the_right_status(http_server: tuple[ServerProcess, str], session: aiohttp.ClientSession) -> None:
    _, base = http_server
    cases = [
        ({"text": ""}, 400, "empty-text"),
        ({"text": "   "}, 400, "empty-text"),
        ({}, 400, "empty-text"),
        ({"text": "你好", "voice": "nobody"}, 404, "unknown-voice"),
        ({"text": "好" * 700}, 413, "text-too-long"),
        ({"text": "你好", "format": "flac"}, 400, "bad-format"),
        ({"text": "你好", "speed": 9}, 400, "bad-speed"),
        ({"text": "你好", "voice": 5}, 400, "bad-field"),
    ]
    for body, status, code in cases:
        got, answer = await _synthesize(session, base, **body)
        assert (got, answer["code"]) == (status, code), body
        assert "Traceback" not in str(answer["error"])
    async with session.post(f"{base}/api/tts/synthesize", data=b"{not json") as response:
        assert response.status == 400 and (await response.json())["code"] == "bad-json"
    async with session.post(f"{base}/api/tts/synthesize", data=b"x" * 200_000) as response:
        assert response.status == 413


async def test_streaming_response_arrives_in_pieces_before_synthesis_ends(http_server: tuple[ServerProcess, str], session: aiohttp.ClientSession) -> None:
    _, base = http_server
    arrivals: list[tuple[float, int]] = []
    started = time.monotonic()
    async with session.post(f"{base}/api/tts/synthesize?stream=1", json={"text": LONG}) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "audio/wav"
        async for piece in response.content.iter_any():
            arrivals.append((time.monotonic() - started, len(piece)))
    total = sum(n for _, n in arrivals)
    assert len(arrivals) >= 4
    # The first audio is out long before the last: the body is written as sentences finish.
    assert arrivals[0][0] < arrivals[-1][0] * 0.5
    assert (total - 44) / 2 / 24000 > 5.0


async def test_accept_header_streams_too(http_server: tuple[ServerProcess, str], session: aiohttp.ClientSession) -> None:
    _, base = http_server
    async with session.post(f"{base}/api/tts/synthesize", json={"text": "你好。", "format": "pcm"}, headers={"Accept": "audio/L16"}) as response:
        body = await response.read()
    assert response.status == 200 and response.headers["X-Sample-Rate"] == "24000"
    assert speech_like(np.frombuffer(body, "<i2").astype(np.float32) / 32768, 24000)


async def test_generated_files_are_bounded_and_names_are_never_taken_from_requests(
    http_server: tuple[ServerProcess, str], session: aiohttp.ClientSession
) -> None:
    _, base = http_server
    urls = []
    for k in range(5):
        status, answer = await _synthesize(session, base, text=f"第{k + 1}条提醒。")
        assert status == 200
        urls.append(answer["audio_url"])
    statuses = []
    for url in urls:
        async with session.get(f"{base}{url}") as response:
            statuses.append(response.status)
    assert statuses == [404, 404, 200, 200, 200]  # --http-max-files 3 keeps the newest three
    for path in ("/static/audio/../../etc/passwd", "/static/audio/%2e%2e%2fetc%2fpasswd", "/static/audio/x.wav"):
        async with session.get(f"{base}{path}") as response:
            assert response.status == 404


async def test_cors_only_for_the_configured_origin(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    port = free_port()
    server = start_server(tmp_path, "--http-uri", f"http://127.0.0.1:{port}", "--http-cors", "http://example.test")
    try:
        async with session.options(f"http://127.0.0.1:{port}/api/tts/synthesize") as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "http://example.test"
        async with session.get(f"http://127.0.0.1:{port}/api/voices") as response:
            assert response.headers["Access-Control-Allow-Origin"] == "http://example.test"
    finally:
        stop_server(server)


class _BrokenEngine:
    """A voice whose model fails on every sentence (a real exception from the engine)."""

    def __init__(self) -> None:
        self.info = VoiceInfo(name="broken", engine="test", languages=("zh_CN", "zh"), sample_rate=16000, path=Path("."))

    @property
    def sample_rate(self) -> int:
        return 16000

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        raise RuntimeError("model file is corrupt")

    def warm_up(self) -> None:
        pass


async def test_failure_after_the_whole_chain_is_a_500_without_details(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    synthesizer = Synthesizer(VoiceCatalog([_BrokenEngine()], [], "broken"), Frontend(), SynthesisSettings(cache_mb=0))
    port = free_port()
    door = HttpDoor(synthesizer, HttpSettings(port=port, audio_dir=tmp_path))
    await door.start()
    try:
        status, answer = await _synthesize(session, f"http://127.0.0.1:{port}", text="你好。")
        assert status == 500 and answer["code"] == "synthesis-failed"
        assert "Traceback" not in str(answer["error"]) and "File " not in str(answer["error"])
        async with session.get(f"http://127.0.0.1:{port}/health") as response:
            health = await response.json()
        assert health["fallbacks"]["broken"]["errors"] == 1
    finally:
        await door.stop()
        synthesizer.close()
