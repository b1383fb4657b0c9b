"""English through Piper (en_US-joe-medium), speed, and sentence silence."""

from __future__ import annotations

import numpy as np
import pytest
from wyoming.tts import Synthesize, SynthesizeVoice

from conftest import REPO, ServerProcess, exchange, speech_like
from local_server import catalog_from
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.synthesis import SynthesisSettings, Synthesizer, VoiceRequest
from wyoming_indextts.voices import VoiceCatalog

JOE = "en_US-joe-medium"


async def test_english_synthesis_over_wyoming(server: ServerProcess) -> None:
    received = await exchange(
        server.port, Synthesize(text="Turn on the living room lights. The front door is locked.", voice=SynthesizeVoice(name=JOE)).event()
    )
    assert received.types[0] == "audio-start" and received.types[-1] == "audio-stop"
    assert received.types.count("audio-start") == 1
    assert received.rate == 22050
    assert speech_like(received.audio, received.rate)
    assert 2.0 < received.duration < 8.0


@pytest.fixture(scope="module")
def catalog() -> VoiceCatalog:
    return catalog_from([REPO / "models"], "zh_CN-baker")


async def _duration(synthesizer: Synthesizer, text: str, name: str, speed: float | None = None) -> float:
    voice = synthesizer.resolve_voice(VoiceRequest(name=name))
    pieces = [chunk.samples async for chunk in synthesizer.stream(text, voice, speed)]
    return len(np.concatenate(pieces)) / voice.sample_rate


@pytest.mark.parametrize("name", [JOE, "zh_CN-baker", "espeak-ng"])
async def test_speed_per_request_and_per_server(catalog: VoiceCatalog, name: str) -> None:
    text = "打开客厅的灯。" if name == "zh_CN-baker" else "Turn on the living room lights."
    normal = Synthesizer(catalog, Frontend(), SynthesisSettings(max_workers=1))
    fast_server = Synthesizer(catalog, Frontend(), SynthesisSettings(max_workers=1, speed=1.5))
    try:
        base = await _duration(normal, text, name)
        assert await _duration(normal, text, name, speed=1.5) < 0.85 * base  # per request
        assert await _duration(fast_server, text, name) < 0.85 * base  # --speed
        assert await _duration(normal, text, name, speed=0.7) > 1.15 * base
    finally:
        normal.close()
        fast_server.close()


async def test_sentence_silence_is_added_after_each_sentence(catalog: VoiceCatalog) -> None:
    text = "Turn on the lights. Lock the door."
    plain = Synthesizer(catalog, Frontend(), SynthesisSettings(max_workers=1))
    spaced = Synthesizer(catalog, Frontend(), SynthesisSettings(max_workers=1, sentence_silence=0.4))
    try:
        # espeak-ng is deterministic; VITS durations vary a little from run to run.
        a = await _duration(plain, text, "espeak-ng")
        b = await _duration(spaced, text, "espeak-ng")
    finally:
        plain.close()
        spaced.close()
    assert b == pytest.approx(a + 0.8, abs=0.01)
