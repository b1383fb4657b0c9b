"""Voice catalogue: what a plain install lists, language routing, multi-speaker Piper voices."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wyoming.info import Info
from wyoming.tts import Synthesize, SynthesizeVoice

from conftest import REPO, ServerProcess, describe, exchange, speech_like, start_server, stop_server
from piper_voices import HOP, write_piper_voice
from wyoming_indextts.voices import VoiceCatalog, discover_voices

MULTI = "en_US-test-multi"
SPEAKERS = {"alice": 0, "bob": 1, "carol": 2}


async def test_plain_install_lists_chinese_english_and_espeak(server: ServerProcess) -> None:
    info = Info.from_event(await describe(server.port))
    voices = {v.name: v for v in info.tts[0].voices}
    assert {"zh_CN-baker", "en_US-joe-medium", "espeak-ng"} <= set(voices)
    assert "en_US" in voices["en_US-joe-medium"].languages
    assert {"zh", "en"} <= set(voices["espeak-ng"].languages)
    assert all(v.installed for v in voices.values())


@pytest.mark.parametrize(
    ("voice", "rate"),
    [
        (SynthesizeVoice(language="zh"), 24000),
        (SynthesizeVoice(language="zh_CN"), 24000),
        (SynthesizeVoice(language="cmn"), 24000),
        (SynthesizeVoice(language="en"), 22050),
        (SynthesizeVoice(language="en_US"), 22050),
        (None, 24000),  # no voice: --voice (zh_CN-baker)
        (SynthesizeVoice(name="espeak-ng"), 22050),
    ],
)
async def test_language_only_requests_route_to_the_language_default(
    server: ServerProcess, voice: SynthesizeVoice | None, rate: int
) -> None:
    text = "Turn on the light." if voice is not None and (voice.language or "").startswith("en") else "打开客厅的灯。"
    received = await exchange(server.port, Synthesize(text=text, voice=voice).event())
    assert received.types[-1] == "audio-stop", received.events
    assert received.rate == rate
    assert speech_like(received.audio, received.rate)


def test_catalogue_resolves_languages_names_and_default() -> None:
    discovery = discover_voices([REPO / "models"])
    catalog = VoiceCatalog.load(discovery.voices, 1, "zh_CN-baker", discovery.failures)
    for language in ("zh", "zh_CN", "zh-CN", "cmn"):
        assert catalog.resolve(language=language).info.name == "zh_CN-baker"
    for language in ("en", "en_US", "en-GB"):
        assert catalog.resolve(language=language).info.name == "en_US-joe-medium"
    assert catalog.resolve().info.name == "zh_CN-baker"
    assert catalog.resolve(name="espeak-ng").sample_rate == 22050
    # espeak-ng comes last, so it never becomes a language's default while another voice speaks it.
    assert [e.info.name for e in catalog.engines][-1] == "espeak-ng"


@pytest.fixture(scope="module")
def multi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("multi")
    write_piper_voice(folder / MULTI, MULTI, speakers=SPEAKERS, sample_rate=16000)
    proc = start_server(folder, "--data-dir", str(folder))
    yield proc
    stop_server(proc)


async def test_multi_speaker_piper_voice_is_listed_with_its_speakers(multi_server: ServerProcess) -> None:
    info = Info.from_event(await describe(multi_server.port))
    voices = {v.name: v for v in info.tts[0].voices}
    assert MULTI in voices
    assert [s.name for s in voices[MULTI].speakers or []] == list(SPEAKERS)
    # The default voices are still there next to the dropped-in one.
    assert {"zh_CN-baker", "en_US-joe-medium", "espeak-ng"} <= set(voices)


async def test_multi_speaker_voice_is_selectable_by_speaker_name_and_id(multi_server: ServerProcess) -> None:
    # The test graph makes (sid + 1) × HOP samples per phoneme id, so the speaker shows in the length.
    lengths: dict[str, int] = {}
    for speaker in ("alice", "bob", "carol", "0", "1", "2"):
        voice = SynthesizeVoice(name=MULTI, speaker=speaker)
        received = await exchange(multi_server.port, Synthesize(text="Hello there.", voice=voice).event())
        assert received.types[-1] == "audio-stop", received.events
        assert received.rate == 16000
        lengths[speaker] = len(received.audio)
    assert lengths["alice"] == lengths["0"] and lengths["bob"] == lengths["1"] and lengths["carol"] == lengths["2"]
    assert lengths["alice"] % HOP == 0
    assert lengths["bob"] == 2 * lengths["alice"] and lengths["carol"] == 3 * lengths["alice"]
    unknown = await exchange(multi_server.port, Synthesize(text="Hello.", voice=SynthesizeVoice(name=MULTI, speaker="dave")).event())
    assert unknown.types == ["error"]
