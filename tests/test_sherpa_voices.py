"""Matcha, MeloTTS (VITS) and Kokoro voices in sherpa-onnx's release layout, checked against
sherpa-onnx itself (PyPI ``sherpa-onnx``, a test-only dependency) on faithful miniature folders
(tests/sherpa_fixtures.py).

* For the same token ids, speaker and speed, our engines give sherpa-onnx's audio (noise scales
  0, the only setting in which two runs of the same model agree; silence scaling off).
* For the same text, where both front ends read it alike, the same token ids (sherpa-onnx's
  ids come from the folder's echo twin, whose graph outputs its input). Two differences of
  layout, not of reading, are allowed for: sherpa-onnx adds blanks clause by clause and joins
  the clauses, so a blank is doubled after each comma (the models were trained with one: we
  put one); and it runs Kokoro once per clause, repeating the clause's final mark after its
  closing 0 (we run a sentence at once, as Kokoro's own pipeline does).
* Where they read it differently (tone sandhi, neutral tones), the only difference is those
  syllables, and ours is the reading a speaker uses.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sherpa_onnx

from sherpa_fixtures import CHECK_TEXTS, KOKORO_SPEAKERS
from wyoming_indextts.engines import load_engine
from wyoming_indextts.engines.base import Engine, SynthesisConfig
from wyoming_indextts.engines.matcha import InverseStft, MatchaEngine
from wyoming_indextts.engines.model_tokens import Marks, SyllableSpeller, ToneStyle, chinese_tokens, english_pieces, read_tokens
from wyoming_indextts.engines.sherpa_folder import describe, inspect_folder
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.frontend.normalize_en import number_words
from wyoming_indextts.frontend.pipeline import split_head

FAMILIES = ("matcha", "melo", "kokoro")
# Our audio and sherpa-onnx's for the same ids: the same graphs on the same ONNX Runtime kernels;
# what differs is summation order (our inverse STFT in float64 vs kaldi-native-fbank's float32).
AUDIO_TOLERANCE = 1e-4
# Sentences whose readings both front ends agree on (checked below), with punctuation where
# our #3 boundaries fall, so the token ids must be identical.
AGREE = CHECK_TEXTS[:8]
# Sentences where sherpa-onnx's lexicon lookup reads some syllables otherwise: syllable index →
# (as spoken, as the lexicon has it, the families whose lexicon has it so).
DIFFER: dict[str, dict[int, tuple[str, str, tuple[str, ...]]]] = {
    "今天天气很好。": {4: ("hen2", "hen3", FAMILIES)},  # third tone before a third tone
    "你好，我想去银行。": {0: ("ni2", "ni3", ("melo",)), 2: ("wo2", "wo3", FAMILIES)},  # MeloTTS's lexicon has no sandhi at all
    "一起去看看吧。": {4: ("kan5", "kan4", FAMILIES)},  # a reduplicated verb's second syllable is neutral
    "这件衣服不错。": {3: ("fu5", "fu2", FAMILIES), 4: ("bu2", "bu4", ("melo",))},  # 衣服 yīfu; 不 before a fourth tone
}
# Chinese with English inside, for the families that speak English themselves: words from the
# model's own lexicon (all of these are in the miniatures' lexicons).
MIXED = CHECK_TEXTS[12:16]
TEXTS = AGREE + tuple(DIFFER) + MIXED
DETERMINISTIC = {"matcha": {"noise_scale": 0.0}, "melo": {"noise_scale": 0.0, "noise_scale_w": 0.0}, "kokoro": {}}


def espeak_data() -> str:
    """The espeak-ng data our Kokoro engine phonemizes with (piper-tts's), for sherpa-onnx too."""
    from piper.phonemize_espeak import ESPEAK_DATA_DIR

    return str(ESPEAK_DATA_DIR)


@pytest.fixture
def folders(sherpa_folders: dict[str, Path]) -> dict[str, Path]:
    assert set(TEXTS) <= set(CHECK_TEXTS)  # their phrases are in the miniatures' lexicons
    return sherpa_folders


def oracle(family: str, folder: Path, vocoder: str = "vocos-22khz-univ.onnx") -> sherpa_onnx.OfflineTts:
    """sherpa-onnx on a folder, deterministic (noise 0), all clauses in one run, silences as made.
    (sherpa-onnx exits the process on a bad path: make sure they exist.)"""
    if family == "matcha":
        if not (folder / vocoder).is_file():  # the echo folder has only its echo vocoder
            vocoder = "hifigan_v2.onnx"
        assert (folder / vocoder).is_file()
        model = sherpa_onnx.OfflineTtsModelConfig(matcha=sherpa_onnx.OfflineTtsMatchaModelConfig(
            acoustic_model=str(folder / "model-steps-3.onnx"), vocoder=str(folder / vocoder),
            lexicon=str(folder / "lexicon.txt"), tokens=str(folder / "tokens.txt"), noise_scale=0.0), num_threads=1)
    elif family == "melo":
        model = sherpa_onnx.OfflineTtsModelConfig(vits=sherpa_onnx.OfflineTtsVitsModelConfig(
            model=str(folder / "model.onnx"), lexicon=str(folder / "lexicon.txt"), tokens=str(folder / "tokens.txt"),
            noise_scale=0.0, noise_scale_w=0.0), num_threads=1)
    else:
        model = sherpa_onnx.OfflineTtsModelConfig(kokoro=sherpa_onnx.OfflineTtsKokoroModelConfig(
            model=str(folder / "model.onnx"), voices=str(folder / "voices.bin"), tokens=str(folder / "tokens.txt"),
            lexicon=f"{folder / 'lexicon-us-en.txt'},{folder / 'lexicon-zh.txt'}", data_dir=espeak_data()), num_threads=1)
    sentences = 1 if family == "kokoro" else 0  # Kokoro runs chunk by chunk whatever this says
    return sherpa_onnx.OfflineTts(sherpa_onnx.OfflineTtsConfig(model=model, max_num_sentences=sentences, silence_scale=1.0))


def oracle_ids(family: str, tts: sherpa_onnx.OfflineTts, text: str) -> list[int] | tuple[list[int], list[int]]:
    """The token ids sherpa-onnx made from ``text``, read back from an echo model's output."""
    values = np.rint(np.asarray(tts.generate(text, sid=0, speed=1.0).samples)).astype(np.int64).tolist()
    if family == "melo":
        return [v // 64 for v in values], [v % 64 for v in values]
    return values


def oracle_runs(tts: sherpa_onnx.OfflineTts, text: str) -> list[list[int]]:
    """Kokoro: sherpa-onnx runs the model once per chunk (a Chinese clause of more than 12 tokens
    is a chunk of its own); the echo model's output of each run, from the progress callback."""
    runs: list[list[int]] = []

    def collect(samples: np.ndarray, progress: float) -> int:
        runs.append(np.rint(np.asarray(samples)).astype(np.int64).tolist())
        return 1

    tts.generate(text, sid=0, speed=1.0, callback=collect)
    return runs


def kokoro_tokens(runs: list[list[int]]) -> list[int]:
    """The tokens between each run's opening and closing 0 (sherpa-onnx 2.0.1 repeats a run's
    final punctuation after its closing 0; Kokoro reads nothing after it as speech)."""
    out: list[int] = []
    for run in runs:
        closing = len(run) - 1 - run[::-1].index(0)
        out.extend(run[1:closing])
    return out


def single_blanks(ids: list[int], blank: int) -> list[int]:
    """sherpa-onnx's clause-joined ids with the doubled blank at each join made single."""
    out: list[int] = []
    for i in ids:
        if not (out and i == blank and out[-1] == blank):
            out.append(i)
    return out


def sherpa_ids(family: str, folders: dict[str, Path], text: str, echo: sherpa_onnx.OfflineTts) -> list[int]:
    """sherpa-onnx's ids for a text in one comparable form: the tokens (MeloTTS: token·64 + tone),
    blanks single; Kokoro: the tokens between the 0s."""
    if family == "kokoro":
        return kokoro_tokens(oracle_runs(echo, text))
    ids = oracle_ids(family, echo, text)
    if family == "melo":
        assert isinstance(ids, tuple)
        return single_blanks([x * 64 + t for x, t in zip(*ids)], 0)
    assert isinstance(ids, list)
    return single_blanks(ids, int(inspect_folder(folders["matcha"]).metadata["pad_id"]))


def comparable(family: str, ids: object) -> list[int]:
    """Our ids in the same form."""
    if family == "kokoro":  # one run per sentence: [0, tokens…, 0]
        assert isinstance(ids, list) and len(ids) == 1
        (run,) = ids
        assert run[0] == run[-1] == 0 and 0 not in run[1:-1]
        return run[1:-1]
    if family == "melo":
        assert isinstance(ids, tuple)
        return [x * 64 + t for x, t in zip(*ids)]
    assert isinstance(ids, list)
    return ids


def our_engine(family: str, folder: Path, **files: str) -> Engine:
    info = describe(inspect_folder(folder))
    info = replace(info, options=DETERMINISTIC[family], files={**info.files, **files})
    engine = load_engine(info)
    engine.warm_up()
    return engine


def our_ids(engine: Engine, text: str) -> object:
    (sentence,) = Frontend().sentences(text)
    return engine.token_ids(sentence)  # type: ignore[attr-defined]


def our_audio(family: str, engine: Engine, ids: object, speed: float, speaker: str | None = None) -> np.ndarray:
    config = SynthesisConfig(speed=speed, speaker=speaker)
    if family == "matcha":
        return np.concatenate(list(engine.speak(ids, config, threading.Event())))  # type: ignore[attr-defined]
    if family == "melo":
        return engine.audio(*ids, config)  # type: ignore[attr-defined]
    return engine.audio(ids, config)  # type: ignore[attr-defined]


@pytest.mark.parametrize("family", FAMILIES)
def test_sherpa_onnx_loads_and_runs_the_miniature(folders: dict[str, Path], family: str) -> None:
    """The miniature is a folder sherpa-onnx accepts, and our install checks accept it too."""
    audio = oracle(family, folders[family]).generate("今天天气很好。", sid=0, speed=1.0)
    info = describe(inspect_folder(folders[family]))
    assert audio.sample_rate == info.sample_rate == {"matcha": 22050, "melo": 44100, "kokoro": 24000}[family]
    samples = np.asarray(audio.samples)
    assert len(samples) > audio.sample_rate * 0.2 and np.abs(samples).max() > 0.05


@pytest.mark.parametrize("family", FAMILIES)
def test_same_audio_as_sherpa_onnx_for_the_same_ids(folders: dict[str, Path], family: str) -> None:
    echo, real, engine = oracle(family, folders[family + "-echo"]), oracle(family, folders[family]), our_engine(family, folders[family])
    worst = 0.0
    for text in TEXTS[:4]:
        ids = oracle_ids(family, echo, text)
        for speed, sid in ((1.0, 0), (1.3, 2 if family == "kokoro" else 0)):
            expected = np.asarray(real.generate(text, sid=sid, speed=speed).samples)
            if family == "kokoro":  # one run per chunk, as sherpa-onnx ran them
                runs = oracle_runs(echo, text)
                ours = np.concatenate([our_audio(family, engine, run, speed, KOKORO_SPEAKERS[sid]) for run in runs])
            else:
                ours = our_audio(family, engine, ids, speed)
            assert len(ours) == len(expected), (text, speed)
            worst = max(worst, float(np.abs(ours - expected).max()))
    print(f"{family}: max |ours - sherpa-onnx| = {worst:.2e}")
    assert worst <= AUDIO_TOLERANCE


def test_matcha_with_hifigan_matches_sherpa_onnx_window_by_window(folders: dict[str, Path]) -> None:
    """The other vocoder users download: its windows too add up to sherpa-onnx's one run."""
    folder = folders["matcha"]
    echo, real = oracle("matcha", folders["matcha-echo"]), oracle("matcha", folder, vocoder="hifigan_v2.onnx")
    engine = our_engine("matcha", folder, vocoder="hifigan_v2.onnx")
    text = "请关上窗户，外面下雨了。"
    chunks = list(engine.speak(oracle_ids("matcha", echo, text), SynthesisConfig(), threading.Event()))  # type: ignore[attr-defined]
    expected = np.asarray(real.generate(text, sid=0, speed=1.0).samples)
    assert len(chunks) > 1
    assert np.abs(np.concatenate(chunks) - expected).max() <= AUDIO_TOLERANCE


@pytest.mark.parametrize("family", FAMILIES)
def test_same_token_ids_as_sherpa_onnx_where_the_readings_agree(folders: dict[str, Path], family: str) -> None:
    echo, engine = oracle(family, folders[family + "-echo"]), our_engine(family, folders[family])
    for text in AGREE:
        assert comparable(family, our_ids(engine, text)) == sherpa_ids(family, folders, text, echo), text


@pytest.mark.parametrize("family", ["melo", "kokoro"])
def test_english_inside_chinese_goes_to_the_models_own_english_as_sherpa_onnx_sends_it(folders: dict[str, Path], family: str) -> None:
    echo, engine = oracle(family, folders[family + "-echo"]), our_engine(family, folders[family])
    for text in MIXED:
        (sentence,) = Frontend().sentences(text)
        assert "en" in {span.language for span in sentence.spans} and engine.info.languages[-1] == "en"
        assert comparable(family, our_ids(engine, text)) == sherpa_ids(family, folders, text, echo), text


def test_kokoro_reads_english_words_its_lexicon_lacks_with_espeak_ng(folders: dict[str, Path]) -> None:
    """sherpa-onnx skips them (the word is silent); we phonemize them."""
    engine = our_engine("kokoro", folders["kokoro"])
    (sentence,) = Frontend().sentences("我们使用 generation 系统。")
    (ids,) = engine.token_ids(sentence)  # type: ignore[attr-defined]
    (without,) = engine.token_ids(Frontend().sentences("我们使用系统。")[0])  # type: ignore[attr-defined]
    assert len(ids) > len(without) + 5


@pytest.mark.parametrize("family", FAMILIES)
def test_where_the_lexicon_reads_otherwise_only_those_syllables_differ_and_ours_are_spoken(folders: dict[str, Path], family: str) -> None:
    echo, engine = oracle(family, folders[family + "-echo"]), our_engine(family, folders[family])
    for text, readings in DIFFER.items():
        (sentence,) = Frontend().sentences(text)
        syllables = list(sentence.syllables)
        for index, (spoken, _, _) in readings.items():
            assert syllables[index].pinyin == spoken, (text, syllables[index])
        as_lexicon = {syllables[i].index: lexicon for i, (_, lexicon, families) in readings.items() if family in families}
        assert as_lexicon, text
        theirs = sherpa_ids(family, folders, text, echo)
        assert comparable(family, our_ids(engine, text)) != theirs, text
        # Give our engine the lexicon's readings of those syllables: then the ids are sherpa-onnx's.
        spans = tuple(replace(span, syllables=tuple(replace(s, pinyin=as_lexicon.get(s.index, s.pinyin)) for s in span.syllables))
                      for span in sentence.spans)
        assert comparable(family, engine.token_ids(replace(sentence, spans=spans))) == theirs, text  # type: ignore[attr-defined]


def test_matcha_streams_the_vocoder_in_windows_that_add_up_to_one_run(folders: dict[str, Path]) -> None:
    engine = our_engine("matcha", folders["matcha"])
    assert isinstance(engine, MatchaEngine)
    (sentence,) = Frontend().sentences("客厅的灯已经打开了，卧室的空调温度调到二十六度，窗帘也已经拉上了。")
    ids = engine.token_ids(sentence)
    mel = engine.mel(ids, SynthesisConfig())
    chunks = list(engine.speak(ids, SynthesisConfig(), threading.Event()))
    whole = engine.vocode(mel)
    assert len(chunks) >= 3 and len(chunks[0]) < len(whole) / 3  # audio leaves after the first small window
    assert np.abs(np.concatenate(chunks) - whole).max() <= 1e-5


def test_pieces_end_with_the_mark_of_where_they_stop(folders: dict[str, Path]) -> None:
    """A head cut off for early audio ends in a comma, not a full stop; a question the front end
    recognises without a question mark still ends in the model's question token."""
    engine = our_engine("matcha", folders["matcha"])
    tokens = {i: t for t, i in engine._tokens.items()}  # type: ignore[attr-defined]
    (sentence,) = Frontend().sentences("客厅的灯已经打开了，空调温度调到二十六度。")
    head, tail = split_head(sentence)
    assert tokens[engine.token_ids(head)[-2]] == "," and tokens[engine.token_ids(tail)[-2]] == "."  # type: ignore[attr-defined]
    (question,) = Frontend().sentences("你明天去银行吗")
    assert tokens[engine.token_ids(question)[-2]] == "?"  # type: ignore[attr-defined]


def test_inverse_stft_fed_in_pieces_equals_one_inverse_stft() -> None:
    rng = np.random.default_rng(3)
    real, imag = rng.standard_normal((2, 40, 513))
    whole = InverseStft(1024, 256)
    one = np.concatenate([whole.push(real, imag), whole.finish()])
    pieces = InverseStft(1024, 256)
    parts = [pieces.push(real[a:b], imag[a:b]) for a, b in ((0, 1), (1, 7), (7, 30), (30, 40))]
    assert len(one) == 39 * 256
    assert np.allclose(np.concatenate([*parts, pieces.finish()]), one, atol=1e-6)


def test_kokoro_speakers_and_style_rows(folders: dict[str, Path]) -> None:
    """Speakers come from the metadata by name; each gets its own style table (row = length)."""
    engine = our_engine("kokoro", folders["kokoro"])
    assert [s.name for s in engine.info.speakers] == list(KOKORO_SPEAKERS)
    (sentence,) = Frontend().sentences("欢迎回家！")
    (ids,) = engine.token_ids(sentence)  # type: ignore[attr-defined]
    a = engine.audio(ids, SynthesisConfig(speaker="zf_001"))  # type: ignore[attr-defined]
    b = engine.audio(ids, SynthesisConfig(speaker="zm_009"))  # type: ignore[attr-defined]
    assert not np.array_equal(a, b)


def test_syllable_spelling_is_learned_from_the_lexicon_in_each_tone_style() -> None:
    """The three ways the families write tones, learned from a handful of characters whose
    dictionary reading is known; erhua and neutral tones follow each family's convention."""
    readings = {"好": "hao3", "号": "hao4", "花": "hua1", "吗": "ma5", "麻": "ma2", "儿": "er2"}
    styles = {
        ToneStyle.SUFFIX: ({"好": "hao3", "号": "hao4", "花": "hua1", "吗": "ma", "麻": "ma2", "儿": "er2"},
                           {"hao3", "hao4", "hao2", "hua1", "ma", "ma2", "er", "er2"}),
        ToneStyle.TOKEN: ({"好": "ㄏ ㄠ 3", "号": "ㄏ ㄠ 4", "花": "ㄏ 穵 1", "吗": "ㄇ ㄚ 5", "麻": "ㄇ ㄚ 2", "儿": "ㄦ 2"},
                          set("ㄏㄠ穵ㄇㄚㄦR12345")),
        ToneStyle.PARALLEL: ({"好": "h ao 3 3", "号": "h ao 4 4", "花": "h ua 1 1", "吗": "m a 5 5", "麻": "m a 2 2", "儿": "EE er 2 2"},
                             {"h", "ao", "ua", "m", "a", "EE", "er"}),
    }
    for style, (lexicon, known) in styles.items():
        speller = SyllableSpeller.learn(lexicon, style, known, readings.__getitem__)
        assert speller.agreement == 1.0
        spelled = {p: speller.spell(p) for p in ("hao2", "ma5", "huar1")}
        if style is ToneStyle.SUFFIX:
            assert [s.tokens for s in spelled.values()] == [("hao2",), ("ma",), ("hua1", "er")]
        elif style is ToneStyle.TOKEN:
            assert [s.tokens for s in spelled.values()] == [("ㄏ", "ㄠ", "2"), ("ㄇ", "ㄚ", "5"), ("ㄏ", "穵", "R", "1")]
        else:
            assert [(s.tokens, s.tones) for s in spelled.values()] == [
                (("h", "ao"), (2, 2)), (("m", "a"), (5, 5)), (("h", "ua", "EE", "er"), (1, 1, 5, 5))]


def test_a_model_trained_with_word_separators_gets_them_at_our_word_boundaries() -> None:
    readings = {"今": "jin1", "天": "tian1", "好": "hao3"}
    lexicon = {"今": "ㄐ 阴 1", "天": "ㄊ 言 1", "好": "ㄏ ㄠ 3"}
    known = set("ㄐ阴ㄊ言ㄏㄠ13/,.")
    speller = SyllableSpeller.learn(lexicon, ToneStyle.TOKEN, known, readings.__getitem__)
    (sentence,) = Frontend().sentences("今天好")
    marks = Marks.find(frozenset(known), "/")
    tokens = [t for s in chinese_tokens(sentence.syllables, speller, marks, sentence.syllables[-1]) for t in s.tokens]
    assert tokens == ["ㄐ", "阴", "1", "ㄊ", "言", "1", "/", "ㄏ", "ㄠ", "3"]
    assert Marks.find(frozenset(known)).word is None  # only where the model has the token


def test_the_readings_benchmark_reads_as_sherpa_onnx_does(folders: dict[str, Path]) -> None:
    """benchmarks/sherpa_readings.py models sherpa-onnx's lexicon lookup (longest lexicon word
    first, over a lexicon rebuilt by the upstream recipe): on the check sentences it gives the
    syllables sherpa-onnx sends the Matcha miniature (whose tokens are toned syllables)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from sherpa_readings import lexicon_reading

    echo = oracle("matcha", folders["matcha-echo"])
    tokens = {i: t for t, i in read_tokens(folders["matcha"] / "tokens.txt").items()}
    for text in AGREE + tuple(DIFFER):
        ids = oracle_ids("matcha", echo, text)
        assert isinstance(ids, list)
        spoken = [tokens[i] for i in ids if tokens[i] not in (" ", "_") and tokens[i][0].isalpha()]
        modelled = [r[:-1] if r.endswith("5") else r for r in lexicon_reading(text, "matcha") if r]
        assert spoken == modelled, text


def test_numbers_in_english_become_words_for_the_lexicon_voices() -> None:
    """MeloTTS and Kokoro read English from word lexicons: digits (which espeak-ng would have read)
    are spelled out first, else they would be silent."""
    pieces = list(english_pieces("The door has been open for 15 minutes, 1,250.5 in total."))
    words = [w for w, is_word in pieces if is_word]
    assert words[6:] == ["fifteen", "minutes", "one", "thousand", "two", "hundred", "fifty", "point", "five", "in", "total"]
    assert [w for w, is_word in pieces if not is_word] == [",", "."]
    assert number_words("2025") == "two thousand twenty five" and number_words("-3") == "minus three"
