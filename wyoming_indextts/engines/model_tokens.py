"""A downloaded model's own token set (``tokens.txt``, ``lexicon*.txt``), and how our front end's
readings are spelled in it.

The model families users download from the sherpa-onnx releases (Matcha, MeloTTS VITS, Kokoro)
ship a lexicon that maps words to the model's tokens. We never use it to *read* Chinese (our
front end reads better: polyphones, sandhi, numbers); we use it to learn how the model *spells*
a syllable. Each single-character entry pairs a character with the model's tokens for it, and
the lexicon was generated from the same first reading of that character our dictionaries hold
(pypinyin's), so voting over thousands of characters gives, for every toneless syllable, the
model's tokens for it and, for every tone, the model's tone mark. The folder defines the
mapping; nothing here is a table of one model's symbols.

Three ways the families mark tones (:class:`ToneStyle`):

* ``SUFFIX``: the tone is a suffix of the syllable's last token (Matcha Baker spells a syllable
  as one token, ``hang2``, neutral ``ma`` without a digit);
* ``TOKEN``: the syllable's tokens, then a tone token (Kokoro v1.1: ``ㄏ ㄤ 2``);
* ``PARALLEL``: phones, with a tone id per phone in a second sequence (MeloTTS: ``h ang`` /
  ``2 2``; lexicon lines list the phones, then as many tone ids).
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path

from ..frontend import Sentence, Span, Syllable
from ..frontend.dictionaries import default_dictionaries
from ..frontend.normalize_en import number_words
from ..frontend.sentence import is_hanzi
from .base import EngineError, VoiceInfo

_LOGGER = logging.getLogger(__name__)

# What the engines say once at start-up, so the first request does not pay for lazy allocations.
WARM_UP = Sentence("你好。", "你好。", (Span("zh", "你好。", (Syllable("你", "ni2", 0), Syllable("好", "hao3", 1, 4))),))

# Below this share of its single characters agreeing with our readings, a lexicon is not the
# pinyin-derived kind these engines understand.
MIN_LEXICON_AGREEMENT = 0.5

_TONED = re.compile(r"^([a-zü]+?)([1-5]?)$")
_SUFFIX = re.compile(r"^(.*?)(\d*)$")


@lru_cache(maxsize=4096)
def split_syllable(pinyin: str) -> tuple[str, int]:
    """``hang2`` → (hang, 2); a syllable without a digit is neutral (5)."""
    match = _TONED.match(pinyin.lower().replace("ü", "v"))
    if match is None:
        return pinyin.lower(), 5
    return match.group(1), int(match.group(2) or 5)


def read_tokens(path: Path) -> dict[str, int]:
    """``tokens.txt``: ``TOKEN ID`` per line; a line with the id alone is the space token.
    The first line of a token wins, as in sherpa-onnx."""
    tokens: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise EngineError(f"Cannot read {path}: {err}") from err
    for number, line in enumerate(lines, 1):
        fields = line.strip().split()
        if not fields:
            continue
        if len(fields) == 1:
            fields = [" ", fields[0]]
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise EngineError(f"{path}, line {number}: expected 'TOKEN ID', got {line!r}")
        tokens.setdefault(fields[0], int(fields[1]))
    if not tokens:
        raise EngineError(f"{path} lists no tokens")
    return tokens


def read_lexicon(paths: Iterable[Path], keep: Callable[[str], bool]) -> dict[str, str]:
    """``WORD TOKEN TOKEN …`` lines of one or more lexicon files → word (lower-cased) → its
    tokens, space-separated (one string per word: an English lexicon has ~130,000 words); the
    first line of a word wins, as in sherpa-onnx. Only words ``keep`` accepts are held (a full
    lexicon has hundreds of thousands of phrases we never look up)."""
    lexicon: dict[str, str] = {}
    for path in paths:
        try:
            with path.open(encoding="utf-8") as lines:
                for line in lines:
                    word, _, rest = line.strip().partition(" ")
                    word = word.lower()
                    rest = " ".join(rest.split())
                    if rest and word not in lexicon and keep(word):
                        lexicon[word] = rest
        except (OSError, UnicodeDecodeError) as err:
            raise EngineError(f"Cannot read {path}: {err}") from err
    return lexicon


def single_hanzi(word: str) -> bool:
    return len(word) == 1 and is_hanzi(word)


def latin_word(word: str) -> bool:
    return word.isascii() and any(c.isalpha() for c in word)


class ToneStyle(Enum):
    SUFFIX = "suffix"
    TOKEN = "token"
    PARALLEL = "parallel"


@dataclass(frozen=True)
class Spelling:
    """One syllable in a model's tokens; ``tones`` only for ``PARALLEL`` models (one per token)."""

    tokens: tuple[str, ...]
    tones: tuple[int, ...] = ()


@dataclass(frozen=True)
class SyllableSpeller:
    """Toned pinyin (our front end's, tones as spoken) → the model's tokens."""

    style: ToneStyle
    bases: Mapping[str, tuple[str, ...]]
    """Toneless syllable (``hang``, ``lv``) → its tokens without the tone."""
    tones: Mapping[int, str]
    """Tone 1-5 → its mark: a suffix, a token, or a tone id (as text)."""
    known: frozenset[str] = field(default_factory=frozenset)
    """Every token of the model, to spell syllables the lexicon's characters never showed."""
    agreement: float = 1.0
    """Share of the lexicon's single characters whose tokens agree with the learned spelling of
    our reading of them: a low share means the lexicon is not the kind this assumes."""

    @classmethod
    def learn(
        cls,
        lexicon: Mapping[str, str],
        style: ToneStyle,
        known: Iterable[str],
        reading: Callable[[str], str],
    ) -> SyllableSpeller:
        """Vote over the lexicon's single Chinese characters; ``reading`` gives our dictionary's
        first reading of a character (``hang2``)."""
        base_votes: defaultdict[str, Counter[tuple[str, ...]]] = defaultdict(Counter)
        tone_votes: defaultdict[int, Counter[str]] = defaultdict(Counter)
        seen: list[tuple[str, int, tuple[str, ...], str]] = []
        vocabulary = frozenset(known)
        for word, line in lexicon.items():
            if not single_hanzi(word):
                continue
            entry = line.split()
            split = _split_entry(entry, style)
            if split is None or not all(t in vocabulary for t in _model_tokens(entry, style)):
                continue  # sherpa-onnx drops lexicon lines with unknown tokens too
            base, tone = split_syllable(reading(word))
            spelled, mark = split
            base_votes[base][spelled] += 1
            tone_votes[tone][mark] += 1
            seen.append((base, tone, spelled, mark))
        if not seen:
            raise EngineError("The lexicon has no single Chinese characters to learn the model's syllables from")
        bases = {base: votes.most_common(1)[0][0] for base, votes in base_votes.items()}
        tones = {tone: votes.most_common(1)[0][0] for tone, votes in tone_votes.items()}
        agree = sum(bases[b] == s and tones[t] == m for b, t, s, m in seen) / len(seen)
        return cls(style, bases, tones, vocabulary, agree)

    def spell(self, pinyin: str) -> Spelling | None:
        """The model's tokens for one syllable, or None when the model has no way to say it."""
        base, tone = split_syllable(pinyin)
        mark = self._tone(tone)
        if mark is None:
            return None
        tokens = self.bases.get(base)
        if tokens is None and base.endswith("r") and base != "er" and base[:-1] in self.bases:
            return self._erhua(base[:-1], tone)
        if tokens is None:
            if self.style is ToneStyle.SUFFIX and base + mark in self.known:
                return Spelling((base + mark,))
            return None
        return self._join(tokens, mark)

    def _tone(self, tone: int) -> str | None:
        if tone in self.tones:
            return self.tones[tone]
        # A tone the lexicon never showed (a neutral tone in a lexicon without any): the
        # nearest full tone is better than dropping the syllable.
        return self.tones.get(4 if tone == 5 else tone)

    def _join(self, tokens: tuple[str, ...], mark: str) -> Spelling | None:
        if self.style is ToneStyle.SUFFIX:
            last = tokens[-1] + mark
            return Spelling((*tokens[:-1], last)) if last in self.known else None
        if self.style is ToneStyle.TOKEN:
            return Spelling((*tokens, mark))
        return Spelling(tokens, (int(mark),) * len(tokens))

    def _erhua(self, base: str, tone: int) -> Spelling | None:
        """花儿 ``huar1``: a model with an erhua token (misaki's ``R``, Kokoro) puts it before the
        tone; the others were trained on 儿 as a syllable of its own, neutral."""
        mark = self._tone(tone)
        assert mark is not None
        if self.style is ToneStyle.TOKEN and "R" in self.known:
            return Spelling((*self.bases[base], "R", mark))
        first, second = self._join(self.bases[base], mark), self.spell("er5")
        if first is None or second is None:
            return first or second
        return Spelling(first.tokens + second.tokens, first.tones + second.tones)


def _model_tokens(entry: list[str], style: ToneStyle) -> list[str]:
    """The entry's tokens that must be in tokens.txt (a PARALLEL line ends with tone ids)."""
    return entry[: len(entry) // 2] if style is ToneStyle.PARALLEL else entry


def _split_entry(entry: list[str], style: ToneStyle) -> tuple[tuple[str, ...], str] | None:
    """A single character's lexicon tokens → (toneless tokens, tone mark)."""
    if style is ToneStyle.SUFFIX:
        match = _SUFFIX.match(entry[-1])
        assert match is not None
        return ((*entry[:-1], match.group(1)), match.group(2)) if match.group(1) else None
    if style is ToneStyle.TOKEN:
        return (tuple(entry[:-1]), entry[-1]) if len(entry) >= 2 else None
    half = len(entry) // 2
    phones, tones = entry[:half], entry[half:]
    if not phones or len(entry) % 2 or len(set(tones)) != 1 or not tones[0].isdigit():
        return None
    return tuple(phones), tones[0]


@dataclass(frozen=True)
class Marks:
    """The model's punctuation tokens that carry our prosody: a pause at an intonation-phrase
    boundary (#3) and the sentence's end, with its question or exclamation contour."""

    comma: str | None = None
    period: str | None = None
    question: str | None = None
    exclamation: str | None = None
    word: str | None = None
    """A word separator, where the model was trained with one (misaki's ``/``)."""

    @property
    def all(self) -> tuple[str, ...]:
        """The sentence-closing and pausing marks this model has."""
        return tuple(m for m in (self.comma, self.period, self.question, self.exclamation) if m)

    @classmethod
    def find(cls, known: Mapping[str, int] | frozenset[str], word_separator: str | None = None) -> Marks:
        def first(*candidates: str) -> str | None:
            return next((c for c in candidates if c in known), None)

        return cls(
            comma=first(",", "，"),
            period=first(".", "。"),
            question=first("?", "？"),
            exclamation=first("!", "！"),
            word=word_separator if word_separator and word_separator in known else None,
        )

    def ending(self, sentence: Sentence) -> str | None:
        """What closes this piece: the sentence's final mark, or a comma where the piece stops
        inside a sentence (the head cut off for early audio, Chinese before an English word
        another voice speaks) so that the model does not end the sentence's melody there."""
        syllables = sentence.syllables
        ends_in_chinese = bool(sentence.spans) and sentence.spans[-1].language == "zh"
        if ends_in_chinese and syllables:
            rest = sentence.normalized[syllables[-1].index + 1 :]
            if any(c.isalnum() for c in rest):
                return self.comma
        if sentence.is_question:
            return self.question or self.period
        if sentence.text.rstrip()[-1:] in ("!", "！"):
            return self.exclamation or self.period
        return self.period


def closing_syllable(sentence: Sentence) -> Syllable | None:
    """The syllable after which :meth:`Marks.ending` closes the sentence: its last one, when
    the sentence ends in Chinese (before English, a #3 boundary still gets its comma)."""
    if sentence.spans and sentence.spans[-1].language == "zh" and sentence.syllables:
        return sentence.syllables[-1]
    return None


def chinese_tokens(syllables: Sequence[Syllable], speller: SyllableSpeller, marks: Marks, last: Syllable | None) -> Iterator[Spelling]:
    """Chinese syllables in the model's tokens, with a comma at each #3 boundary (and the word
    separator at #1/#2 where the model has one), none after ``last`` (the sentence's last
    syllable: :meth:`Marks.ending` closes it). Syllables the model cannot say are left out."""
    for syllable in syllables:
        spelled = speller.spell(syllable.pinyin)
        if spelled is None:
            _LOGGER.debug("No tokens for %r (%s); skipped", syllable.char, syllable.pinyin)
            continue
        yield spelled
        if syllable is last:
            break
        mark = marks.comma if syllable.boundary >= 3 else marks.word if syllable.boundary >= 1 else None
        if mark:
            yield Spelling((mark,), (0,) if spelled.tones else ())


_ENGLISH = re.compile(r"([A-Za-z][A-Za-z']*)|(\d+(?:[,.]\d+)*)|([,.!?;:…，。！？；：])")
_HALF_WIDTH = str.maketrans("，。！？；：", ",.!?;:")


def english_pieces(text: str) -> Iterator[tuple[str, bool]]:
    """An English span as the lexicon-based front ends read it: (lower-cased word, True) and
    (punctuation mark, False), in order, numbers as words; the rest (spaces, symbols) dropped."""
    for match in _ENGLISH.finditer(text):
        word, number, mark = match.groups()
        if word:
            yield word.lower(), True
        elif number:
            yield from ((w, True) for w in number_words(number).split())
        else:
            yield mark.translate(_HALF_WIDTH), False


def intersperse(ids: list[int], blank: int) -> list[int]:
    """``[a, b]`` → ``[blank, a, blank, b, blank]`` (VITS-style ``add_blank``)."""
    out = [blank] * (2 * len(ids) + 1)
    out[1::2] = ids
    return out


def load_speller(info: VoiceInfo, style: ToneStyle, word: bool = False) -> tuple[dict[str, int], dict[str, str], SyllableSpeller]:
    """tokens.txt, the lexicon entries the engines need (single characters, Latin words), and
    the syllable spelling learned from them; shared by the three families."""
    tokens = read_tokens(info.path / info.files.get("tokens", "tokens.txt"))
    names = [n for n in info.files.get("lexicon", "lexicon.txt").split(",") if n]
    lexicon = read_lexicon([info.path / n for n in names], lambda w: single_hanzi(w) or (word and w.isascii()))
    speller = SyllableSpeller.learn(lexicon, style, tokens, default_dictionaries().char_reading)
    if speller.agreement < MIN_LEXICON_AGREEMENT:
        raise EngineError(
            f"Voice {info.name!r}: only {speller.agreement:.0%} of its lexicon's characters read as our dictionary reads them; "
            "not a pinyin-based lexicon this engine understands"
        )
    _LOGGER.debug("Voice %s: %d syllables learned, %.1f%% of characters agree", info.name, len(speller.bases), 100 * speller.agreement)
    return tokens, lexicon, speller
