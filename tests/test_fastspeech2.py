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


def test_question_end_rises_and_stressed_words_are_marked(engine: FastSpeech2Engine) -> None:
    from wyoming_indextts.engines.fastspeech2 import prosody_controls

    [question] = Frontend().sentences("你真的要去银行取钱吗？")
    ids, owners = engine._layout(question)
    controls = prosody_controls(question, owners, speed=1.0)
    assert len(controls.f0_offset) == len(ids)
    last = max(owners)
    assert controls.f0_offset[owners.index(last)] > 0.5  # 吗 is raised
    assert controls.duration[owners.index(last)] > 1.0  # and drawn out
    stressed = [question.syllables[o].char for o in set(owners) if o >= 0 and controls.energy_offset[owners.index(o)] > 0]
    assert sorted(stressed) == sorted("真的")
    [statement] = Frontend().sentences("我要去银行取钱。")
    _, owners = engine._layout(statement)
    flat = prosody_controls(statement, owners, speed=1.0)
    assert not flat.f0_offset.any() and np.allclose(flat.duration, 1.0)


def test_question_pitch_is_higher_at_the_end_than_the_statement(engine: FastSpeech2Engine) -> None:
    """The model's own pitch output for the final syllable goes up when asked as a question."""
    import onnxruntime  # noqa: F401

    from wyoming_indextts.engines.fastspeech2 import prosody_controls

    [question] = Frontend().sentences("你要去银行取钱吗？")
    ids, owners = engine._layout(question)
    feeds = {
        "input_ids": np.asarray([ids], dtype=np.int32), "speaker_ids": np.zeros(1, np.int32),
        "f0_ratios": np.ones(1, np.float32), "energy_ratios": np.ones(1, np.float32), "energy_offsets": np.zeros(1, np.float32),
    }
    controls = prosody_controls(question, owners, speed=1.0)
    session = engine._acoustic
    (raised,) = session.run(["f0"], {**feeds, "speed_ratios": controls.duration, "f0_offsets": controls.f0_offset})
    (plain,) = session.run(["f0"], {**feeds, "speed_ratios": np.ones(1, np.float32), "f0_offsets": np.zeros(1, np.float32)})
    final = owners.index(max(owners)) + 1  # the final of 吗
    assert raised[0, final] > plain[0, final] + 0.5
