"""IndexTTS-2 against an independent implementation: ``indextts-onnx`` 0.3.0 (a test-only
dependency, used as an oracle and never copied), which runs the same ONNX layout torch-free.

Where that package takes a shortcut upstream's PyTorch code does not (it reads the clip with
librosa's resampler, computes CAMPPlus filterbanks with librosa instead of Kaldi's, pads the
w2v-BERT input with zeros, and skips the repetition penalty on the first code), the engine
follows upstream, and the tests say so: on those points it is compared with upstream's
definition (kaldi-native-fbank and transformers implement it) rather than with the oracle.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from indextts_fixtures import build_voice2, speech_like
from wyoming_indextts.engines.indextts import IndexTTSOptions
from wyoming_indextts.engines.indextts2 import IndexTTS2Engine
from wyoming_indextts.engines.indextts_common import W2VFeatures, load_reference, reference_mel
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.voices import read_manifest

pytest.importorskip("indextts_onnx", reason="the reference implementation is part of the test extra")
from indextts_onnx.audio import mel_spectrogram, seamless_m4t_features  # noqa: E402
from indextts_onnx.infer import IndexTTSInfer  # noqa: E402
from indextts_onnx.tokenizer import TextTokenizer  # noqa: E402

# Our sentence → the text upstream's normalizer hands its tokenizer (punctuation mapped to ASCII,
# our polyphone choice as inline pinyin replacing the character). indextts-onnx has no
# normalizer, so it gets this text; both then split CJK characters and upper-case.
EXPECTED_TEXT = {
    "你真的要去银行取钱吗？": "你真的要去银HANG2取钱吗?",
    "今天天气很好。": "今天天气很好.",
    "The garage door has been open for 15 minutes!": "The garage door has been open for fifteen minutes!",
    "客厅温度23.5°C，湿度60%。": "客厅温度二十三点五摄氏度,湿度百分之六十.",
    "“好”，明天见～": "'好',明天见-",
}


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_voice2(tmp_path_factory.mktemp("indextts2") / "voice")


@pytest.fixture(scope="module")
def engine(voice: Path) -> IndexTTS2Engine:
    return IndexTTS2Engine(read_manifest(voice / "voice.json"))


@pytest.fixture(scope="module")
def infer(voice: Path) -> IndexTTSInfer:
    return IndexTTSInfer(str(voice), num_threads=1, use_int8=True)


def _diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    assert ours.shape == theirs.shape
    return float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))))


@pytest.mark.parametrize("text", EXPECTED_TEXT)
def test_token_ids_match_with_upper_case_cjk_split_and_inline_pinyin(engine: IndexTTS2Engine, voice: Path, text: str) -> None:
    [sentence] = Frontend().sentences(text)
    theirs = TextTokenizer(str(voice / "bpe.model")).encode(EXPECTED_TEXT[text])
    assert list(engine.text_ids(sentence)[0]) == theirs
    assert 2 not in theirs  # nothing fell to <unk>: the comparison covers real pieces


def test_inline_pinyin_spelling() -> None:
    from wyoming_indextts.engines.indextts2 import split_cjk

    assert split_cjk("你真的要去银HANG2取钱吗?") == "你 真 的 要 去 银 HANG2 取 钱 吗 ?"
    assert split_cjk("open 空调 now") == "OPEN 空 调 NOW"


@pytest.mark.parametrize("samples", [16160, 16000])
def test_w2v_bert_features_match_the_numpy_port_except_its_padding(samples: int) -> None:
    """Both follow SeamlessM4TFeatureExtractor's Kaldi fbank; indextts-onnx pads an odd frame count
    with zeros and leaves the padded frame unmasked, upstream pads with 1 and masks it."""
    audio = speech_like(samples / 16000, 16000, 1)
    ours, mask = W2VFeatures(Path("/nonexistent"))(audio)  # w2v-bert-2.0's published settings
    theirs, their_mask = seamless_m4t_features(audio)
    assert ours.shape == theirs.shape
    if samples == 16000:  # 98 frames, 49 stacked: no padding
        assert np.array_equal(mask, their_mask)
        assert _diff(ours, theirs) <= 2e-3
    else:  # 99 frames: the 50th stacked frame is half padding
        assert mask[0, -1] == 0 and their_mask[0, -1] == 1
        assert _diff(ours[:, :-1], theirs[:, :-1]) <= 2e-3
        assert _diff(ours[:, -1, :80], theirs[:, -1, :80]) <= 2e-3
        assert np.all(ours[:, -1, 80:] == 1.0) and np.all(theirs[:, -1, 80:] == 0.0)


def test_reference_mel_matches() -> None:
    audio = speech_like(1.3, 22050, 3)
    assert _diff(reference_mel(audio), mel_spectrogram(audio)[None]) <= 1e-3


def _conditioning_into(infer: IndexTTSInfer, engine: IndexTTS2Engine, clip: Path) -> None:
    """Give the oracle our conditioning (its own reference path is not upstream's, see above)."""
    c = engine.conditioning(clip.stem)
    infer._cache_ref_audio = str(clip)  # noqa: SLF001
    infer._cache_spk_cond = infer._cache_emo_cond = c.gpt_cond  # noqa: SLF001
    infer._cache_style, infer._cache_prompt_condition, infer._cache_ref_mel = c.style, c.prompt_condition, c.ref_mel  # noqa: SLF001


def test_conditioning_graphs_are_fed_as_the_oracle_feeds_them(engine: IndexTTS2Engine, infer: IndexTTSInfer, voice: Path) -> None:
    audio_22k, audio_16k = load_reference(voice / "voices" / "alice.wav")
    c = engine.analyse(audio_22k, audio_16k)
    features, mask = W2VFeatures(voice)(audio_16k)
    semantic = infer.wav2vec2bert.run(None, {"input_features": features, "attention_mask": mask})[0]
    assert np.array_equal(c.gpt_cond, semantic)
    s_ref = infer._run_semantic_codec(semantic)  # noqa: SLF001
    prompt = infer.s2mel_ref.run(None, {"s_ref": s_ref, "ref_target_lengths": np.array([c.ref_mel.shape[2]], np.int64)})[0]
    assert np.array_equal(c.prompt_condition, prompt) and prompt.shape[1] == c.ref_mel.shape[2]


def test_greedy_codes_and_latent_match(engine: IndexTTS2Engine, infer: IndexTTSInfer, voice: Path) -> None:
    c = engine.conditioning("alice")
    engine.options = IndexTTSOptions(top_k=1, max_tokens=60)
    for text in list(EXPECTED_TEXT)[:3]:
        [sentence] = Frontend().sentences(text)
        ids = engine.text_ids(sentence)
        ours = engine.generate_codes(ids, c, "zh", np.random.default_rng(0), threading.Event())
        codes, latent = infer._gpt2_generate(c.gpt_cond, list(ids[0]), c.gpt_cond, max_mel_tokens=60, top_k=1)  # noqa: SLF001
        assert 10 <= len(ours) < 60 and np.array_equal(ours, codes[0])
        frames = int(len(ours) * 1.72)
        condition = engine.semantic_condition(ours, ids, c, frames)
        their_condition = infer.s2mel_gen.run(None, {"mel_codes": codes, "latent": latent, "target_lengths": np.array([frames], np.int64)})[0]
        assert np.array_equal(condition, their_condition)


def test_a_seeded_greedy_sentence_comes_out_the_same(engine: IndexTTS2Engine, infer: IndexTTSInfer, voice: Path) -> None:
    """Text → codes → latent → DiT flow → BigVGAN, with the oracle's own noise, sample by sample."""
    clip = voice / "voices" / "bob.wav"
    _conditioning_into(infer, engine, clip)
    text = "你真的要去银行取钱吗？"
    np.random.seed(5)
    theirs = infer.infer(str(clip), EXPECTED_TEXT[text], max_mel_tokens=60, top_k=1, n_steps=4)
    [sentence] = Frontend().sentences(text)
    engine.options = IndexTTSOptions(top_k=1, steps=4, max_tokens=60)
    c = engine.conditioning("bob")
    ids = engine.text_ids(sentence)
    codes = engine.generate_codes(ids, c, "zh", np.random.default_rng(0), threading.Event())
    condition = np.concatenate([c.prompt_condition, engine.semantic_condition(codes, ids, c, int(len(codes) * 1.72))], axis=1)
    # The oracle draws one uniform per sampled code (the stop code too) from numpy's global
    # generator, then the flow noise from the same generator.
    state = np.random.RandomState(5)
    state.random_sample(len(codes) + 1)
    noise = state.randn(1, 80, condition.shape[1]).astype(np.float32)
    ours = np.clip(engine.vocode(engine.flow(condition, c, noise, threading.Event())), -1.0, 1.0)
    assert len(ours) == len(theirs) == int(len(codes) * 1.72) * 256
    assert _diff(ours, theirs) <= 1e-6
