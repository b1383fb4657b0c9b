"""IndexTTS engine orchestration, on a miniature export with the real graph names and shapes.

No real IndexTTS weights are available here, so audio quality is not tested; the graphs are
tiny but real ONNX models run by onnxruntime, and their behaviour is known (indextts_fixtures).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from indextts_fixtures import STOP, build_voice
from wyoming_indextts.engines.base import Cancelled, SynthesisConfig
from wyoming_indextts.engines.indextts import HOP, SAMPLE_RATE, IndexTTSEngine, annotate_polyphones
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.synthesis import SynthesisSettings, Synthesizer, VoiceRequest
from wyoming_indextts.voices import VoiceCatalog, read_manifest

pytest.importorskip("tiktoken", reason="the optional 'indextts' extra (tiktoken) is part of the test extra")


@pytest.fixture
def voice(tmp_path: Path) -> Path:
    return build_voice(tmp_path / "indextts-test")


def _engine(voice: Path) -> IndexTTSEngine:
    return IndexTTSEngine(read_manifest(voice / "voice.json"))


def _sentence(text: str = "你要去银行吗？"):
    [sentence] = Frontend().sentences(text)
    return sentence


def test_reference_clips_become_speakers_and_conditioning_has_the_right_shapes(voice: Path) -> None:
    engine = _engine(voice)
    assert [s.name for s in engine.info.speakers] == ["alice", "bob"]
    assert engine.sample_rate == SAMPLE_RATE == 22050
    c = engine.conditioning("bob")
    assert c.style.shape == (1, 192) and c.conds.shape == (1, 3, 1280)
    assert c.ref_mel.shape[:2] == (1, 80) and c.prompt_condition.shape == (1, c.ref_mel.shape[2], 512)
    assert not np.array_equal(c.style, engine.conditioning("alice").style)  # two clips, two voices


def test_speaker_conditioning_is_computed_once_and_cached_on_disk(voice: Path) -> None:
    first = _engine(voice)
    first.warm_up()
    assert first.conditioning_runs == 2
    first.conditioning("alice")
    assert first.conditioning_runs == 2  # memory cache
    assert len(list((voice / "cache").glob("*.npz"))) == 2
    second = _engine(voice)
    second.warm_up()
    assert second.conditioning_runs == 0  # disk cache
    assert np.array_equal(first.conditioning("bob").conds, second.conditioning("bob").conds)


def test_kv_cache_grows_by_one_per_step(voice: Path) -> None:
    prefill = ort.InferenceSession(str(voice / "gpt_prefill/gpt_prefill.onnx"))
    step = ort.InferenceSession(str(voice / "gpt_step/gpt_step.onnx"))
    text = np.array([[5, 6, 7, 8, 9]], np.int64)
    outputs = prefill.run(None, {"text_ids": text, "conds": np.zeros((1, 3, 1280), np.float32), "lang_id": np.array([1], np.int64)})
    assert outputs[0].shape == (8194,) and len(outputs) == 1 + 2 * 2
    cache = outputs[1:]
    for k in range(3):
        feeds = {"token": np.array([[10]], np.int64), "pos_idx": np.array([k + 2], np.int64)}
        feeds.update({f"past_kv_{i // 2}_{'kv'[i % 2]}": cache[i] for i in range(len(cache))})
        cache = step.run(None, feeds)[1:]
        assert all(c.shape[2] == text.shape[1] + k + 1 for c in cache)


def test_generation_stops_on_the_stop_code_and_on_the_cap(voice: Path) -> None:
    engine = _engine(voice)
    c = engine.conditioning(None)
    rng = np.random.default_rng(0)
    codes = engine.generate_codes(engine.text_ids(_sentence()), c.conds, "zh", rng, threading.Event())
    assert len(codes) == 6 and STOP not in codes  # the miniature GPT emits six codes, then the stop code
    # prefill's logits pick the code for position 0; step k runs at pos_idx k + 2 (after the start code)
    assert list(codes) == [0] + [(p * 37) % 8192 for p in range(2, 7)]
    capped = IndexTTSEngine(read_manifest(voice / "voice.json"))
    capped.options = type(capped.options)(**{**capped.options.__dict__, "max_tokens": 3})
    assert len(capped.generate_codes(capped.text_ids(_sentence()), c.conds, "zh", rng, threading.Event())) == 3


def test_classifier_free_guidance_batches_conditional_and_unconditional(voice: Path) -> None:
    engine = _engine(voice)
    c = engine.conditioning(None)
    condition = np.concatenate([c.prompt_condition, np.ones((1, 12, 512), np.float32)], axis=1)
    guided = engine.flow(condition, c.ref_mel, c.style, np.random.default_rng(1), threading.Event())
    assert guided.shape == (1, 80, 12)  # the prompt part is cut off
    unguided_engine = _engine(voice)
    unguided_engine.options = type(engine.options)(**{**engine.options.__dict__, "cfg_rate": 0.0})
    unguided = unguided_engine.flow(condition, c.ref_mel, c.style, np.random.default_rng(1), threading.Event())
    assert not np.allclose(guided, unguided)  # the unconditional half of the batch changes the result


def test_audio_length_is_frames_times_256_at_22050(voice: Path) -> None:
    engine = _engine(voice)
    [audio] = list(engine.synthesize(_sentence(), SynthesisConfig(), threading.Event()))
    frames = int(6 * 1.72)
    assert audio.shape == (frames * HOP,) and audio.dtype == np.float32
    [slower] = list(engine.synthesize(_sentence(), SynthesisConfig(speed=0.5), threading.Event()))
    assert len(slower) == int(6 * 1.72 / 0.5) * HOP


def test_cancellation_stops_between_steps(voice: Path) -> None:
    engine = _engine(voice)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        list(engine.synthesize(_sentence(), SynthesisConfig(), cancel))


def test_polyphone_choices_reach_the_model_in_its_pinyin_syntax() -> None:
    assert annotate_polyphones(_sentence("你要去银行吗？")) == "你要去银HANG2吗？"
    # everyday readings (and tones, which the model sandhis itself) are left as characters
    assert annotate_polyphones(_sentence("今天天气很好。")) == "今天天气很好。"
    assert annotate_polyphones(_sentence("你好。")) == "你好。"


def test_missing_graph_leaves_the_voice_out_with_the_reason(voice: Path) -> None:
    (voice / "bigvgan.onnx").unlink()
    catalog = VoiceCatalog.load([read_manifest(voice / "voice.json")], 1, None)
    assert not catalog.engines
    assert "bigvgan.onnx" in catalog.failures[0].reason


async def test_plugs_into_the_synthesizer_and_streams_sentences_in_order(voice: Path) -> None:
    catalog = VoiceCatalog.load([read_manifest(voice / "voice.json")], 1, "indextts-test")
    synthesizer = Synthesizer(catalog, Frontend(), SynthesisSettings(cache_mb=0))
    try:
        resolved = synthesizer.resolve_voice(VoiceRequest(name="indextts-test", speaker="alice"))
        chunks = [c async for c in synthesizer.stream("你好。今天很好。明天见。", resolved)]
    finally:
        synthesizer.close()
    assert len(chunks) == 3 and all(c.sample_rate == 22050 for c in chunks)
    assert all(len(c.samples) % HOP == 0 and len(c.samples) > 0 for c in chunks)
