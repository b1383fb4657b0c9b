"""IndexTTS-2.5 against an independent implementation: ``index-tts-2-5-onnx`` 0.1.0 (a test-only
dependency, used as an oracle and never copied), which runs the same export torch-free and
reproduces the PyTorch reference bit-exactly by its own verification.

Same audio, same text, same miniature export in → the same features, token ids, codes, mel and
audio out, within the stated tolerances. The export is a faithful fixture (real names, [1, V]
logits, 24 cache layers, a GPT that depends on text and conditioning: tests/indextts_fixtures.py),
so the oracle runs it unchanged.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from indextts_fixtures import build_voice, speech_like
from wyoming_indextts.engines.indextts import SPECIAL_TOKENS, IndexTTSEngine, IndexTTSOptions, load_tiktoken
from wyoming_indextts.engines.indextts_common import (
    W2VFeatures,
    campplus_fbank,
    load_reference,
    pinyin_choices,
    reference_mel,
    sample_token,
    text_language,
)
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.voices import read_manifest

oracle = pytest.importorskip("index_tts_2_5_onnx", reason="the reference implementation is part of the test extra")
from index_tts_2_5_onnx.core import cfm_solver, dsp, gpt_sampler  # noqa: E402
from index_tts_2_5_onnx.core.features import W2VFeatures as OracleW2V  # noqa: E402
from index_tts_2_5_onnx.core.frontend import Frontend as OracleFrontend  # noqa: E402
from index_tts_2_5_onnx.core.frontend import get_encoding, lang_to_token  # noqa: E402
from index_tts_2_5_onnx.core.pipeline import IndexTTS2Core  # noqa: E402
from index_tts_2_5_onnx.engine import load_engines  # noqa: E402

SENTENCES = (
    "你真的要去银行取钱吗？",
    "客厅温度23.5°C，湿度60%。",
    "The garage door has been open for 15 minutes!",
    "打开Wi-Fi好吗？“好”……他还了钱。",
)


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_voice(tmp_path_factory.mktemp("indextts25") / "voice")


@pytest.fixture(scope="module")
def engine(voice: Path) -> IndexTTSEngine:
    return IndexTTSEngine(read_manifest(voice / "voice.json"))


@pytest.fixture(scope="module")
def core(voice: Path) -> IndexTTS2Core:
    return IndexTTS2Core(load_engines(str(voice), threads=1, device="cpu"), str(voice), str(voice / "spk_proj.npz"),
                         use_normalization=False)


def _diff(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """(max abs difference, that relative to the reference's largest magnitude)."""
    assert ours.shape == theirs.shape
    diff = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))))
    return diff, diff / max(float(np.max(np.abs(theirs))), 1e-30)


# -- features ---------------------------------------------------------------------------------


def test_reference_clip_is_read_and_resampled_as_upstream(voice: Path) -> None:
    for clip in sorted((voice / "voices").glob("*.wav")):
        ours_22k, ours_16k = load_reference(clip)
        theirs_22k, theirs_16k = dsp.load_ref_audio(str(clip))
        assert _diff(ours_22k, theirs_22k)[0] <= 1e-6  # both soxr HQ
        assert _diff(ours_16k, theirs_16k)[0] <= 1e-5  # windowed sinc, theirs a port of torchaudio's


def test_campplus_fbank_matches_on_a_clip_with_digital_silence() -> None:
    audio = speech_like(1.7, 16000, 2)
    assert np.sum(audio == 0) > 4000  # silent stretches: the frames whose log floor decides the mean
    ours, theirs = campplus_fbank(audio), dsp.campplus_fbank(audio)
    assert _diff(ours, theirs)[0] <= 1e-5
    # the floor the engine used before (1e-10 instead of float32 eps) would shift every bin's mean
    raw = dsp.kaldi_fbank(audio)
    floored = np.where(raw <= np.log(np.finfo(np.float32).eps) + 1e-6, np.log(1e-10), raw)
    assert _diff(floored - floored.mean(axis=0), theirs[0])[0] > 1.0


@pytest.mark.parametrize("samples", [16000, 16160])  # 98 and 99 frames: an odd count ends in a padded, masked frame
def test_w2v_bert_features_match(voice: Path, samples: int) -> None:
    audio = speech_like(samples / 16000, 16000, 1)
    features, mask = W2VFeatures(voice)(audio)
    theirs_features, theirs_mask = OracleW2V(str(voice))(audio)
    assert np.array_equal(mask, theirs_mask) and mask.dtype == np.int64
    assert _diff(features, theirs_features)[0] <= 1e-6
    # without the export's preprocessor_config.json the published w2v-bert-2.0 settings apply
    bare = voice.parent / "bare"
    bare.mkdir(exist_ok=True)
    defaults, default_mask = W2VFeatures(bare)(audio)
    assert np.array_equal(defaults, features) and np.array_equal(default_mask, mask)


def test_reference_mel_is_the_slaney_bank_the_flow_model_expects() -> None:
    audio = speech_like(1.3, 22050, 3)
    ours = reference_mel(audio)
    theirs = dsp.mel_spectrogram(audio)[None]
    assert ours.shape == theirs.shape == (1, 80, len(audio) // 256)
    assert _diff(ours, theirs)[0] <= 1e-4


# -- text -------------------------------------------------------------------------------------


def test_special_token_table_is_the_models(voice: Path) -> None:
    ours = load_tiktoken(voice / "multilingual_zh_ja_yue_char_del.tiktoken")
    theirs = get_encoding(str(voice))
    assert ours._special_tokens == theirs._special_tokens  # noqa: SLF001 — the ids are the contract
    assert len(SPECIAL_TOKENS) == len(theirs._special_tokens)  # noqa: SLF001


def _marked(sentence) -> str:  # noqa: ANN001
    """The sentence in 2.5's own annotation syntax, ``<行|hang2>``, as a user would write it."""
    chars = list(sentence.normalized)
    for index, pinyin in pinyin_choices(sentence).items():
        chars[index] = f"<{chars[index]}|{pinyin.lower()}>"
    return "".join(chars)


@pytest.fixture(scope="module")
def normalizing_frontend(voice: Path) -> OracleFrontend:
    """The oracle's text path with upstream's own normalizer (wetext) switched on."""
    return OracleFrontend(str(voice), use_normalization=True)


@pytest.mark.parametrize("text", SENTENCES)
def test_token_ids_match_with_language_tags_punctuation_and_polyphones(engine: IndexTTSEngine, normalizing_frontend: OracleFrontend,
                                                                     text: str) -> None:
    """Our front end's sentence (normalized, polyphones chosen) against the oracle given the same
    sentence in 2.5's annotation syntax; its wetext normalizer also spells English numbers."""
    frontend = normalizing_frontend
    for sentence in Frontend().sentences(text):
        language = text_language(sentence)
        theirs = frontend.prepare(_marked(sentence), language, max_text_tokens_per_segment=10_000)
        assert [list(ids[0]) for ids in [engine.text_ids(sentence)]] == theirs


def test_polyphone_markup_and_stripped_ids(engine: IndexTTSEngine) -> None:
    [sentence] = Frontend().sentences("你要去银行吗？")
    assert engine.prepare_text(sentence) == "你要去银<|SPECIAL_TOKEN_2|>HANG2<|SPECIAL_TOKEN_2|>吗?"
    ids = engine.text_ids(sentence)[0]
    mark = engine._tokenizer.encode_single_token("<|SPECIAL_TOKEN_2|>")  # noqa: SLF001
    assert list(ids).count(mark) == 2 and ids[0] == engine._tokenizer.encode_single_token("<|zh|>")  # noqa: SLF001
    [shout] = Frontend().sentences("Open the door!")
    assert 0 not in engine.text_ids(shout)[0]  # "!" is id 0, the GPT's start-of-text: upstream drops it


# -- conditioning, generation, flow, vocoder --------------------------------------------------


def test_speaker_conditioning_matches(engine: IndexTTSEngine, core: IndexTTS2Core, voice: Path) -> None:
    ours = engine.analyse(*load_reference(voice / "voices" / "alice.wav"))
    theirs = core.build_speaker(str(voice / "voices" / "alice.wav"))
    assert _diff(ours.style, theirs.style)[1] <= 1e-4
    assert _diff(ours.gpt_cond, theirs.conds)[1] <= 1e-4
    assert _diff(ours.ref_mel, theirs.ref_mel)[0] <= 1e-4
    assert _diff(ours.prompt_condition, theirs.prompt_condition)[1] <= 1e-4


@pytest.mark.parametrize("top_k", [1, 30])  # greedy, and seeded sampling with upstream's defaults
def test_generated_codes_match(engine: IndexTTSEngine, core: IndexTTS2Core, voice: Path, top_k: int) -> None:
    conditioning = engine.conditioning("alice")
    for text in SENTENCES[:3]:
        [sentence] = Frontend().sentences(text)[:1]
        language = text_language(sentence)
        engine.options = IndexTTSOptions(top_k=top_k, max_tokens=60)
        ours = engine.generate_codes(engine.text_ids(sentence), conditioning, language, np.random.default_rng(11), threading.Event())
        theirs = gpt_sampler.generate_codes(core.engines.gpt, engine.text_ids(sentence), conditioning.gpt_cond, lang_to_token(language),
                                            greedy=top_k == 1, max_mel_tokens=60, seed=11)
        assert 10 <= len(ours) < 60  # stopped on the stop code
        assert np.array_equal(ours, theirs)


def test_sampling_filters_as_upstream() -> None:
    rng = np.random.default_rng(3)
    from wyoming_indextts.engines.indextts_common import SamplingOptions

    for _ in range(200):
        logits = (rng.standard_normal(8194) * 3).astype(np.float32)
        seen = set(rng.integers(0, 8194, 20).tolist())
        seed = int(rng.integers(1 << 30))
        ours = sample_token(logits, seen, SamplingOptions(), np.random.default_rng(seed))
        penalised = gpt_sampler._apply_repetition_penalty(logits, seen, 10.0)  # noqa: SLF001
        theirs = gpt_sampler._sample(penalised, np.random.default_rng(seed), 0.8, 30, 0.8)  # noqa: SLF001
        assert ours == theirs


def test_flow_and_vocoder_match_on_the_same_noise(engine: IndexTTSEngine, core: IndexTTS2Core) -> None:
    conditioning = engine.conditioning("bob")
    codes = np.arange(100, 3100, 97, dtype=np.int64)
    frames = int(len(codes) * 1.72)
    condition = np.concatenate([conditioning.prompt_condition, engine.semantic_condition(codes, np.zeros((1, 1), np.int64), conditioning, frames)], axis=1)
    their_latent = core.engines.codec_decode.run(codes[None])
    their_condition = np.concatenate([conditioning.prompt_condition, core.engines.length_regulator.run(their_latent, frames)], axis=1)
    assert np.array_equal(condition, their_condition)
    noise = np.random.default_rng(5).standard_normal((1, 80, condition.shape[1]), dtype=np.float32)
    engine.options = IndexTTSOptions(steps=4)
    ours = engine.flow(condition, conditioning, noise, threading.Event())
    theirs = cfm_solver.solve(core.engines.cfm, condition, conditioning.ref_mel, conditioning.style, n_timesteps=4, cfg_rate=0.7, z=noise)
    assert _diff(ours, theirs)[0] <= 1e-6
    assert _diff(engine.vocode(ours), core.engines.bigvgan.run(theirs))[0] <= 1e-6


def test_a_seeded_greedy_sentence_comes_out_the_same(engine: IndexTTSEngine, core: IndexTTS2Core, voice: Path) -> None:
    """The whole pipeline from the clip file and the text, compared sample by sample."""
    [sentence] = Frontend().sentences("你真的要去银行取钱吗？")
    clip = str(voice / "voices" / "alice.wav")
    theirs = core.synthesize(_marked(sentence), "zh", ref_audio_path=clip, greedy=True, seed=7, n_timesteps=3,
                             cfg_rate=0.7, max_mel_tokens=60)
    # Their noise: two seeds from a master generator (GPT, then flow); ours is ours, so give it theirs.
    master = np.random.default_rng(7)
    master.integers(0, 2**31 - 1)
    flow_seed = int(master.integers(0, 2**31 - 1))
    engine.options = IndexTTSOptions(top_k=1, steps=3, max_tokens=60)
    conditioning = engine.conditioning("alice")
    codes = engine.generate_codes(engine.text_ids(sentence), conditioning, "zh", np.random.default_rng(0), threading.Event())
    frames = int(len(codes) * 1.72)
    condition = np.concatenate([conditioning.prompt_condition, engine.semantic_condition(codes, engine.text_ids(sentence), conditioning, frames)], axis=1)
    noise = np.random.default_rng(flow_seed).standard_normal((1, 80, condition.shape[1]), dtype=np.float32)
    ours = engine.vocode(engine.flow(condition, conditioning, noise, threading.Event()))
    ours_pcm = np.clip(32767.0 * ours, -32767.0, 32767.0).astype(np.int16)
    assert len(theirs) == len(ours_pcm) == frames * 256
    assert int(np.max(np.abs(ours_pcm.astype(np.int32) - theirs))) <= 1
    sf.write(voice.parent / "ours.wav", ours, 22050)  # left for inspection
