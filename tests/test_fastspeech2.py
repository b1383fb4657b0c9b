"""The FastSpeech2 engine on the real default voice, without a server."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from wyoming_indextts.engines.base import Cancelled, SynthesisConfig
from wyoming_indextts.engines.fastspeech2 import FastSpeech2Engine
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.voices import read_manifest

from conftest import REPO, speech_like


@pytest.fixture(scope="module")
def engine() -> FastSpeech2Engine:
    return FastSpeech2Engine(read_manifest(REPO / "models" / "zh_CN-baker" / "voice.json"))


def _mel(engine: FastSpeech2Engine, text: str, speed: float = 1.0) -> np.ndarray:
    [sentence] = Frontend().sentences(text)
    return engine.mel(engine.symbol_ids(sentence), SynthesisConfig(speed=speed))


@pytest.mark.parametrize("text", ["嗯。", "你好。", "客厅温度二十三度，湿度百分之六十，空气质量良好，今晚会有小雨。"])
def test_windowed_vocoder_matches_one_shot(engine: FastSpeech2Engine, text: str) -> None:
    mel = _mel(engine, text)
    one_shot = engine.vocode(mel)
    pieces = list(engine.vocode_windows(mel))
    joined = np.concatenate(pieces)
    assert len(pieces) >= 2  # the first audio leaves before the whole sentence is vocoded
    assert len(pieces[0]) <= 16 * 300 * 2
    assert joined.shape == one_shot.shape == (mel.shape[1] * 300,)
    # Each window carries more context than the vocoder's receptive field, so the
    # samples are the same computation; the tolerance only absorbs float reordering.
    np.testing.assert_allclose(joined, one_shot, atol=1e-4)


def test_very_short_mel_is_padded_not_rejected(engine: FastSpeech2Engine) -> None:
    mel = _mel(engine, "你好。")[:, :3]
    assert engine.vocode(mel).shape == (3 * 300,)


def test_speed_changes_duration(engine: FastSpeech2Engine) -> None:
    normal = _mel(engine, "今天天气很好。").shape[1]
    fast = _mel(engine, "今天天气很好。", speed=2.0).shape[1]
    slow = _mel(engine, "今天天气很好。", speed=0.5).shape[1]
    assert fast < normal * 0.7 and slow > normal * 1.5


def test_synthesize_yields_speech_and_honours_cancel(engine: FastSpeech2Engine) -> None:
    [sentence] = Frontend().sentences("你真的要去银行取钱吗？")
    audio = np.concatenate(list(engine.synthesize(sentence, SynthesisConfig(), threading.Event())))
    assert speech_like(audio, 24000)
    cancel = threading.Event()
    chunks = engine.synthesize(sentence, SynthesisConfig(), cancel)
    next(chunks)
    cancel.set()
    with pytest.raises(Cancelled):
        list(chunks)


def test_output_is_deterministic(engine: FastSpeech2Engine) -> None:
    assert np.array_equal(_mel(engine, "你好，世界。"), _mel(engine, "你好，世界。"))


def test_manifest_paths_resolve(engine: FastSpeech2Engine) -> None:
    assert engine.info.path == Path(REPO / "models" / "zh_CN-baker")
    assert engine.sample_rate == 24000
