"""The fallback chain with real failures, through a real Wyoming server on loopback.

The failing voice is a real Piper voice file whose ONNX graph onnxruntime rejects while
running for inputs of 40 phoneme ids or more (it loads and warms up fine on "Hi."). The
stalling and half-failing voices are engine objects that really stall or raise inside the
worker thread; nothing on the synthesis path is mocked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from wyoming.info import Info
from wyoming.tts import Synthesize, SynthesizeVoice

from conftest import describe, exchange, speech_like
from local_server import catalog_from, serve
from piper_voices import write_piper_voice
from wyoming_indextts.engines.base import SynthesisConfig, VoiceInfo
from wyoming_indextts.engines.espeak import EspeakEngine, espeak_voice_info
from wyoming_indextts.frontend import Sentence
from wyoming_indextts.synthesis import SynthesisSettings

LONG = "This sentence is long enough to break the test voice, which only copes with short input."
BROKEN = "en_US-broken"


@pytest.fixture(scope="module")
def voice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("voices")
    write_piper_voice(folder, BROKEN, sample_rate=16000, fail_at_length=40)
    return folder


async def test_failing_voice_falls_back_at_the_stream_rate(voice_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    catalog = catalog_from([voice_dir])
    async with serve(catalog) as local:
        # A short input the voice can say: no failure, no fallback.
        ok = await exchange(local.port, Synthesize(text="Hi.", voice=SynthesizeVoice(name=BROKEN)).event())
        assert ok.types[-1] == "audio-stop" and ok.rate == 16000
        assert local.synthesizer.failure_counts() == {}

        caplog.set_level(logging.WARNING, logger="wyoming_indextts.synthesis")
        received = await exchange(local.port, Synthesize(text=LONG, voice=SynthesizeVoice(name=BROKEN)).event())
        assert received.types[0] == "audio-start" and received.types[-1] == "audio-stop", received.types
        # One format per stream: the requested voice's rate, though espeak-ng (22050 Hz) spoke.
        assert received.rate == 16000
        assert speech_like(received.audio, received.rate)
        assert received.duration > 2.0
        counts = local.synthesizer.failure_counts()
        assert counts[BROKEN].errors == 1 and counts[BROKEN].total == 1
        assert "ConstantOfShape" in counts[BROKEN].last_error
        # It is the default English voice of this catalogue, so the default chain goes on to espeak-ng.
        assert any("trying espeak-ng" in r.getMessage() for r in caplog.records)


async def test_fallback_voice_option_sets_the_chain(voice_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    catalog = catalog_from([voice_dir])
    settings = SynthesisSettings(fallback_voices=("en_US-joe-medium",))
    async with serve(catalog, settings) as local:
        caplog.set_level(logging.WARNING, logger="wyoming_indextts.synthesis")
        received = await exchange(local.port, Synthesize(text=LONG + " " + LONG, voice=SynthesizeVoice(name=BROKEN)).event())
        assert received.types[-1] == "audio-stop"
        assert received.rate == 16000
        assert speech_like(received.audio, received.rate)
        assert any("trying en_US-joe-medium" in r.getMessage() for r in caplog.records)
        # Two sentences, each failed once and was moved.
        assert local.synthesizer.failure_counts()[BROKEN].errors == 2


class StallingEngine:
    """Takes far longer than the timeout before its first audio (a hung model)."""

    def __init__(self, stall: float) -> None:
        self.info = replace(espeak_voice_info(), name="en-stalling", engine="test", languages=("en_US", "en"), sample_rate=16000)
        self._stall = stall

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        cancel.wait(self._stall)
        yield np.zeros(16000, dtype=np.float32)

    def warm_up(self) -> None:
        pass


class HalfFailingEngine:
    """Speaks the start of every sentence (espeak-ng), then raises."""

    def __init__(self, espeak: EspeakEngine) -> None:
        self.info: VoiceInfo = replace(espeak.info, name="en-half", engine="test", languages=("en_US", "en"))
        self._espeak = espeak

    @property
    def sample_rate(self) -> int:
        return self._espeak.sample_rate

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        audio = np.concatenate(list(self._espeak.synthesize(sentence, config, cancel)))
        yield audio[: len(audio) // 3]
        raise RuntimeError("model crashed mid-sentence")

    def warm_up(self) -> None:
        pass


async def test_timeout_moves_the_sentence_to_the_next_voice() -> None:
    catalog = catalog_from([])
    settings = SynthesisSettings(synthesis_timeout=0.5)
    async with serve(catalog, settings, extra=[StallingEngine(stall=5.0)]) as local:
        started = time.monotonic()
        received = await exchange(local.port, Synthesize(text="Turn on the kitchen light.", voice=SynthesizeVoice(name="en-stalling")).event())
        elapsed = time.monotonic() - started
        assert received.types[-1] == "audio-stop"
        assert received.rate == 16000
        assert speech_like(received.audio, received.rate)  # the stalling voice only makes silence
        assert elapsed < 4.0
        counts = local.synthesizer.failure_counts()
        assert counts["en-stalling"].timeouts == 1 and counts["en-stalling"].errors == 0


async def test_failure_after_partial_audio_drops_the_rest_of_that_sentence_only() -> None:
    catalog = catalog_from([])
    espeak = next(e for e in catalog.engines if e.info.name == "espeak-ng")
    assert isinstance(espeak, EspeakEngine)
    async with serve(catalog, extra=[HalfFailingEngine(espeak)]) as local:
        text = "Turn on the kitchen light. Close the garage door."
        half = await exchange(local.port, Synthesize(text=text, voice=SynthesizeVoice(name="en-half")).event())
        full = await exchange(local.port, Synthesize(text=text, voice=SynthesizeVoice(name="espeak-ng")).event())
        assert half.types[-1] == "audio-stop"
        # Both sentences started (a third of each), nothing was repeated by another voice.
        assert 0.2 * full.duration < half.duration < 0.5 * full.duration
        assert local.synthesizer.failure_counts()["en-half"].truncated == 2


async def test_a_corrupt_voice_is_reported_and_never_stops_the_server(tmp_path: Path) -> None:
    write_piper_voice(tmp_path, "en_US-good", sample_rate=16000)
    (tmp_path / "en_US-corrupt.onnx").write_bytes(b"this is not an onnx model")
    (tmp_path / "en_US-corrupt.onnx.json").write_text((tmp_path / "en_US-good.onnx.json").read_text())
    (tmp_path / "en_US-nojson.onnx").write_bytes((tmp_path / "en_US-good.onnx").read_bytes())
    (tmp_path / "en_US-nojson.onnx.json").write_text("{ not json")
    (tmp_path / "en_US-nomodel.onnx.json").write_text((tmp_path / "en_US-good.onnx.json").read_text())
    bad = tmp_path / "zh_bad"
    bad.mkdir()
    (bad / "voice.json").write_text('{"name": "zh-bad", "engine": "fastspeech2"}')
    catalog = catalog_from([tmp_path])
    failed = {f.name: f.reason for f in catalog.failures}
    assert set(failed) >= {"en_US-corrupt", "en_US-nojson", "en_US-nomodel", "zh_bad"}
    assert "missing" in failed["en_US-nomodel"] and "languages" in failed["zh_bad"]
    assert "INVALID_PROTOBUF" in failed["en_US-corrupt"] or "protobuf" in failed["en_US-corrupt"].lower()
    async with serve(catalog) as local:
        info = Info.from_event(await describe(local.port))
        names = {v.name for v in info.tts[0].voices}
        assert "en_US-good" in names and "espeak-ng" in names
        assert not names & {"en_US-corrupt", "en_US-nojson", "zh-bad"}
