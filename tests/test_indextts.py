"""IndexTTS engines (2.5 and 2) on miniature exports with the real signatures: orchestration,
caching, layout detection and the export checker.

No real IndexTTS weights are available here, so audio quality is not tested; the graphs are
tiny but real ONNX models run by onnxruntime (tests/indextts_fixtures.py). Agreement with
reference implementations is tested in test_indextts_reference.py and test_indextts2_reference.py.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from indextts_fixtures import build_voice, build_voice2
from wyoming_indextts.engines import load_engine
from wyoming_indextts.engines.base import Cancelled, SynthesisConfig
from wyoming_indextts.engines.indextts import HOP, SAMPLE_RATE, IndexTTSEngine, IndexTTSOptions, check_export, main
from wyoming_indextts.engines.indextts2 import IndexTTS2Engine
from wyoming_indextts.engines.indextts_common import pinyin_choices, spell_numbers
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.synthesis import SynthesisSettings, Synthesizer, VoiceRequest
from wyoming_indextts.voices import VoiceCatalog, read_manifest

pytest.importorskip("kaldi_native_fbank", reason="the optional 'indextts' extra is part of the test extra")

BUILDERS = {"2.5": build_voice, "2": build_voice2}


@pytest.fixture(params=sorted(BUILDERS))
def voice(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return BUILDERS[request.param](tmp_path / f"indextts-{request.param}")


@pytest.fixture
def voice25(tmp_path: Path) -> Path:
    return build_voice(tmp_path / "indextts-test")


def _engine(voice: Path):  # noqa: ANN202
    return load_engine(read_manifest(voice / "voice.json"))


def _sentence(text: str = "你要去银行吗？"):  # noqa: ANN202
    [sentence] = Frontend().sentences(text)
    return sentence


def test_the_layout_is_detected_from_the_folder(tmp_path: Path) -> None:
    assert type(_engine(build_voice(tmp_path / "a"))) is IndexTTSEngine
    assert type(_engine(build_voice2(tmp_path / "b"))) is IndexTTS2Engine


def test_reference_clips_become_speakers_with_their_own_conditioning(voice: Path) -> None:
    engine = _engine(voice)
    assert [s.name for s in engine.info.speakers] == ["alice", "bob"]
    assert engine.sample_rate == SAMPLE_RATE == 22050
    c = engine.conditioning("bob")
    assert c.style.shape == (1, 192) and c.ref_mel.shape[:2] == (1, 80)
    assert c.prompt_condition.shape == (1, c.ref_mel.shape[2], 512)
    assert c.gpt_cond.shape == ((1, 3, 1280) if isinstance(engine, IndexTTSEngine) else (1, c.gpt_cond.shape[1], 1024))
    assert not np.allclose(c.style, engine.conditioning("alice").style)  # two clips, two voices


def test_speaker_conditioning_is_computed_once_and_cached_on_disk(voice25: Path) -> None:
    first = _engine(voice25)
    first.warm_up()
    assert first.conditioning_runs == 2
    first.conditioning("alice")
    assert first.conditioning_runs == 2  # memory cache
    assert len(list((voice25 / "cache").glob("*.npz"))) == 2
    second = _engine(voice25)
    second.warm_up()
    assert second.conditioning_runs == 0  # disk cache
    assert np.array_equal(first.conditioning("bob").gpt_cond, second.conditioning("bob").gpt_cond)


def test_a_cache_from_other_features_is_not_reused(voice25: Path) -> None:
    _engine(voice25).warm_up()
    import wyoming_indextts.engines.indextts as module

    old = module.FEATURES_VERSION
    module.FEATURES_VERSION = old + 1
    try:
        engine = _engine(voice25)
        engine.warm_up()
        assert engine.conditioning_runs == 2
    finally:
        module.FEATURES_VERSION = old


def test_generated_codes_depend_on_the_text_and_the_voice(voice: Path) -> None:
    engine = _engine(voice)
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    cancel = threading.Event()
    a = engine.generate_codes(engine.text_ids(_sentence("你要去银行吗？")), engine.conditioning("alice"), "zh", rng(), cancel)
    b = engine.generate_codes(engine.text_ids(_sentence("今天天气很好。")), engine.conditioning("alice"), "zh", rng(), cancel)
    c = engine.generate_codes(engine.text_ids(_sentence("你要去银行吗？")), engine.conditioning("bob"), "zh", rng(), cancel)
    assert 10 <= len(a) < 60 and not np.array_equal(a, b) and not np.array_equal(a, c)
    assert START not in a and STOP not in a


START, STOP = 8192, 8193


def test_generation_stops_at_the_token_cap(voice: Path) -> None:
    engine = _engine(voice)
    engine.options = IndexTTSOptions(top_k=1, max_tokens=5)
    codes = engine.generate_codes(engine.text_ids(_sentence()), engine.conditioning(None), "zh", np.random.default_rng(0), threading.Event())
    assert len(codes) == 5


def test_classifier_free_guidance_changes_the_result(voice: Path) -> None:
    engine = _engine(voice)
    c = engine.conditioning(None)
    condition = np.concatenate([c.prompt_condition, np.ones((1, 12, 512), np.float32)], axis=1)
    noise = np.random.default_rng(1).standard_normal((1, 80, condition.shape[1]), dtype=np.float32)
    guided = engine.flow(condition, c, noise, threading.Event())
    assert guided.shape == (1, 80, 12)  # the prompt part is cut off
    engine.options = IndexTTSOptions(cfg_rate=0.0)
    assert not np.allclose(guided, engine.flow(condition, c, noise, threading.Event()))


def test_audio_length_is_frames_times_256_and_speed_stretches_it(voice: Path) -> None:
    engine = _engine(voice)
    codes = len(engine.generate_codes(engine.text_ids(_sentence()), engine.conditioning(None), "zh", np.random.default_rng(0), threading.Event()))
    [audio] = list(engine.synthesize(_sentence(), SynthesisConfig(), threading.Event()))
    assert audio.shape == (int(codes * 1.72) * HOP,) and audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    [slower] = list(engine.synthesize(_sentence(), SynthesisConfig(speed=0.5), threading.Event()))
    assert len(slower) == int(codes * 1.72 / 0.5) * HOP


def test_long_text_is_cut_into_segments_of_at_most_120_tokens(voice: Path) -> None:
    engine = _engine(voice)
    # the front end splits such text itself; an engine still must not exceed the model's limit
    sentence = replace(_sentence("今天天气很好。"), normalized="今天天气很好，" * 40 + "明天见。")
    segments = engine.text_segments(sentence)
    assert len(segments) > 1 and all(s.shape[1] <= 120 for s in segments)
    engine.text_segments = lambda _: segments[:2]  # type: ignore[method-assign]
    pieces = list(engine.synthesize(sentence, SynthesisConfig(), threading.Event()))
    assert len(pieces) == 3 and not pieces[1].any() and len(pieces[1]) == int(0.2 * 22050)  # a pause between segments


def test_cancellation_stops_between_steps(voice: Path) -> None:
    engine = _engine(voice)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        list(engine.synthesize(_sentence(), SynthesisConfig(), cancel))


def test_polyphone_choices_are_spelled_as_upstream() -> None:
    assert pinyin_choices(_sentence("你要去银行吗？")) == {4: "HANG2"}
    # everyday readings (and tones, which the model sandhis itself) are left as characters
    assert pinyin_choices(_sentence("今天天气很好。")) == {}
    assert pinyin_choices(_sentence("这件事情还是银行更重要。")) == {7: "HANG2"}


def test_english_numbers_are_spelled_for_the_text_model() -> None:
    assert spell_numbers("open for 15 minutes, 23.5 degrees, 1,200 watts") == (
        "open for fifteen minutes, twenty three point five degrees, one thousand two hundred watts")


def test_missing_graph_leaves_the_voice_out_with_the_reason(voice25: Path) -> None:
    (voice25 / "bigvgan.onnx").unlink()
    catalog = VoiceCatalog.load([read_manifest(voice25 / "voice.json")], 1, None)
    assert not catalog.engines
    assert "bigvgan.onnx" in catalog.failures[0].reason


def test_a_missing_weights_file_is_named_before_loading(voice25: Path) -> None:
    (voice25 / "gpt_step" / "gpt_step.onnx.data").unlink()
    catalog = VoiceCatalog.load([read_manifest(voice25 / "voice.json")], 1, None)
    assert "gpt_step/gpt_step.onnx.data" in catalog.failures[0].reason


# -- the export checker ---------------------------------------------------------------------------


def test_checker_passes_both_faithful_exports(voice: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", str(voice)]) == 0
    out = capsys.readouterr().out
    assert "No problems found." in out and out.count(" OK ") >= 12


def test_checker_names_missing_weights_wrong_names_dtypes_ranks_and_tokenizer(voice25: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (voice25 / "semantic_model" / "semantic_model.onnx.data").unlink()
    (voice25 / "multilingual_zh_ja_yue_char_del.tiktoken").unlink()
    step = onnx.load(str(voice25 / "gpt_step" / "gpt_step.onnx"), load_external_data=False)
    step.graph.input[1].type.tensor_type.elem_type = onnx.TensorProto.INT32  # pos_idx as int32
    onnx.save(step, str(voice25 / "gpt_step" / "gpt_step.onnx"))
    prefill = onnx.load(str(voice25 / "gpt_prefill" / "gpt_prefill.onnx"), load_external_data=False)
    prefill.graph.output[0].type.tensor_type.shape.dim.pop(0)  # logits [8194], the old fixture's mistake
    onnx.save(prefill, str(voice25 / "gpt_prefill" / "gpt_prefill.onnx"))
    cfm = onnx.load(str(voice25 / "cfm_estimator" / "cfm_estimator.onnx"))
    cfm.graph.input[5].name = "mu"  # IndexTTS-2's name in a 2.5 folder
    onnx.save(cfm, str(voice25 / "cfm_estimator" / "cfm_estimator.onnx"))
    assert main(["--check", str(voice25)]) == 1
    out = capsys.readouterr().out
    assert "semantic_model/semantic_model.onnx.data: missing" in out
    assert "input 'pos_idx' is int32 rank 1, expected int64 rank 1" in out
    assert "output 'logits' is float32 rank 1, expected float32 rank 2" in out
    assert "input 'cond' missing" in out and "unexpected input 'mu'" in out
    assert "multilingual_zh_ja_yue_char_del.tiktoken: missing" in out


def test_checker_counts_cache_layers_and_tells_an_unknown_folder(voice: Path, tmp_path: Path) -> None:
    layout, findings = check_export(voice)
    assert layout is not None and not [f for f in findings if f.level == "error"]
    assert any("+ 48 KV-cache tensors" in f.message for f in findings)
    empty = tmp_path / "empty"
    empty.mkdir()
    layout, findings = check_export(empty)
    assert layout is None and "no IndexTTS export" in findings[0].message


def test_engine_refuses_an_export_it_cannot_feed(voice25: Path) -> None:
    path = voice25 / "gpt_step" / "gpt_step.onnx"
    step = onnx.load(str(path), load_external_data=False)
    step.graph.input[1].name = "position"
    for node in step.graph.node:
        node.input[:] = ["position" if name == "pos_idx" else name for name in node.input]
    onnx.save(step, str(path))
    catalog = VoiceCatalog.load([read_manifest(voice25 / "voice.json")], 1, None)
    assert "input 'pos_idx' missing" in catalog.failures[0].reason


async def test_plugs_into_the_synthesizer_and_streams_sentences_in_order(voice: Path) -> None:
    name = json.loads((voice / "voice.json").read_text())["name"]
    catalog = VoiceCatalog.load([read_manifest(voice / "voice.json")], 1, name)
    synthesizer = Synthesizer(catalog, Frontend(), SynthesisSettings(cache_mb=0))
    try:
        resolved = synthesizer.resolve_voice(VoiceRequest(name=name, speaker="alice"))
        chunks = [c async for c in synthesizer.stream("你好。今天很好。明天见。", resolved)]
    finally:
        synthesizer.close()
    assert len(chunks) == 3 and all(c.sample_rate == 22050 for c in chunks)
    assert all(len(c.samples) % HOP == 0 and len(c.samples) > 0 for c in chunks)
