"""Interoperability with a real Home Assistant core (tests/home_assistant.py installs it).

Set up as a user would: onboarding and the Wyoming integration's config flow through Home
Assistant's REST API, then speech through ``/api/tts_get_url`` and the audio URL it returns,
converted to mp3 by Home Assistant's own ffmpeg step. Slow the first time (the install, ~5 min);
later runs reuse the cached environment.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from wyoming.tts import Synthesize, SynthesizeVoice

import home_assistant
from conftest import ServerProcess, describe, exchange, free_port, start_server, stop_server

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is not installed (.ci/run installs it); Home Assistant converts TTS with it"
)

ANSWER_WITHIN = 5.0  # seconds for an error to reach the user through Home Assistant


@pytest.fixture(scope="module")
def wyoming_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Default --idle-timeout (120 s): an exchange that is not ended by the server would show as a hang.
    server = start_server(tmp_path_factory.mktemp("ha-wyoming"))
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory, wyoming_server: ServerProcess) -> Iterator[tuple[home_assistant.HomeAssistant, str]]:
    hass = home_assistant.ensure_installed()
    instance = home_assistant.start(hass, tmp_path_factory.mktemp("ha-config"), free_port())
    try:
        instance.onboard()
        entity = instance.add_wyoming(wyoming_server.port)
        yield instance, entity
    finally:
        home_assistant.stop(instance)


def test_the_integration_lists_our_voices(ha: tuple[home_assistant.HomeAssistant, str]) -> None:
    instance, entity = ha
    state = next(s for s in instance.json("GET", "/api/states") if s["entity_id"] == entity)
    assert state["state"] != "unavailable"
    entries = instance.json("GET", "/api/config/config_entries/entry")
    wyoming = [e for e in entries if e["domain"] == "wyoming"]
    assert len(wyoming) == 1 and wyoming[0]["state"] == "loaded"


@pytest.mark.parametrize(
    ("message", "language", "options", "low", "high"),
    [
        ("客厅温度23.5°C，湿度60%。", "zh_CN", None, 1.5, 8.0),
        ("你真的要去银行取钱吗？", "zh_CN", {"voice": "zh_CN-baker"}, 1.0, 6.0),
        ("The garage door has been open for 15 minutes.", "en_US", {"voice": "en_US-joe-medium"}, 1.5, 6.0),
        ("打开Home Assistant的客厅灯。", "zh_CN", None, 1.0, 8.0),
    ],
    ids=["chinese", "chinese-voice-option", "english-voice-option", "mixed"],
)
def test_speech_through_home_assistant(
    ha: tuple[home_assistant.HomeAssistant, str], message: str, language: str, options: dict[str, str] | None, low: float, high: float
) -> None:
    instance, entity = ha
    spoken = instance.speak(entity, message, language, options)
    assert spoken.status == 200, spoken.error
    assert spoken.content_type == "audio/mpeg"
    assert low < spoken.duration() < high


def test_an_answer_is_decoded_as_its_content_type_says() -> None:
    """One real answer of Home Assistant (2.36 s of speech) whose mp3 ffmpeg's format probe takes
    for H.263: the harness must still read it, as a media player does from the Content-Type."""
    answer = (Path(__file__).parent / "data" / "ha-mp3-probed-as-h263.mp3").read_bytes()
    assert answer.startswith(b"ID3")
    assert 2.2 < home_assistant.Spoken(200, answer, 0.0, content_type="audio/mpeg").duration() < 2.5
    with pytest.raises(AssertionError, match="not audio"):
        home_assistant.Spoken(200, b"<html>", 0.0, content_type="text/html").duration()


def similarity(a: bytes, b: bytes) -> float:
    """Peak normalised cross-correlation of two 16-bit PCM signals over shifts of up to 0.2 s
    (mp3's encoder delay and padding move one against the other)."""
    x, y = (np.frombuffer(v, dtype="<i2").astype(np.float64) for v in (a, b))
    size = 1 << int(np.ceil(np.log2(len(x) + len(y))))
    full = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)
    window = int(0.2 * home_assistant.DECODED_RATE)
    peak = max(np.abs(full[:window]).max(), np.abs(full[-window:]).max())
    return float(peak / np.sqrt((x**2).sum() * (y**2).sum()))


async def test_the_voice_option_changes_the_voice(ha: tuple[home_assistant.HomeAssistant, str], wyoming_server: ServerProcess) -> None:
    """The same English sentence with two voice options. espeak-ng is deterministic, so the answer
    for it is the waveform our server gives for espeak-ng directly (through mp3), and the answer
    for Joe is not: the option reached us. (Durations alone cannot tell: both voices read this
    sentence in about 2.07 s, and Joe's length varies from run to run.)"""
    instance, entity = ha
    message = "Good morning, the kitchen light is on."
    joe = instance.speak(entity, message, "en_US", {"voice": "en_US-joe-medium"})
    espeak = instance.speak(entity, message, "en_US", {"voice": "espeak-ng"})
    assert joe.status == espeak.status == 200
    direct = await exchange(wyoming_server.port, Synthesize(text=message, voice=SynthesizeVoice(name="espeak-ng")).event())
    reference = home_assistant.to_pcm(direct.pcm, ["-f", "s16le", "-ar", str(direct.rate), "-ac", "1"])
    assert similarity(espeak.samples(), reference) > 0.9
    assert similarity(joe.samples(), reference) < 0.5


@pytest.mark.parametrize(
    ("message", "options"),
    [("     ", None), ("你好。", {"voice": "no-such-voice"}), ("好" * 6000, None)],
    ids=["spaces-only", "unknown-voice", "over-max-text-chars"],
)
def test_errors_reach_home_assistant_at_once(
    ha: tuple[home_assistant.HomeAssistant, str], wyoming_server: ServerProcess, message: str, options: dict[str, str] | None
) -> None:
    instance, entity = ha
    spoken = instance.speak(entity, message, "zh_CN", options)
    assert spoken.status >= 400, "Home Assistant must report a failure, not audio"
    assert spoken.status != 500
    assert spoken.seconds < ANSWER_WITHIN, f"Home Assistant took {spoken.seconds:.1f} s to give up"
    # The server goes on serving, through Home Assistant and directly.
    assert instance.speak(entity, "好的。", "zh_CN").status == 200
    assert wyoming_server.process.poll() is None


def test_punctuation_only_is_a_short_silence_not_a_server_error(ha: tuple[home_assistant.HomeAssistant, str]) -> None:
    instance, entity = ha
    for message in ("。。。", "？！"):
        spoken = instance.speak(entity, message, "zh_CN")
        assert spoken.status == 200, spoken.error
        assert spoken.seconds < ANSWER_WITHIN
        assert spoken.duration() < 1.0


async def test_describe_still_answers(wyoming_server: ServerProcess) -> None:
    assert (await describe(wyoming_server.port)).type == "info"
