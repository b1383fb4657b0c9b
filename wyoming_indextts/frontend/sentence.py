"""Plain data the front end hands to engines: sentences, language spans, syllables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Language = Literal["zh", "en"]


def is_hanzi(char: str) -> bool:
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


@dataclass(frozen=True)
class Syllable:
    """One spoken Mandarin syllable and where it comes from in the normalized text."""

    char: str
    """The Chinese character (or Latin letter) it reads."""

    pinyin: str
    """Toned pinyin as spoken, digits for tones, 5 for neutral: ``hang2``, ``ma5``."""

    index: int
    """Position of ``char`` in the sentence's normalized text."""

    boundary: int = 0
    """Prosodic boundary after this syllable: 0 none, 1 word, 2 phrase, 3 intonation, 4 sentence."""


@dataclass(frozen=True)
class Span:
    """A run of one language inside a sentence."""

    language: Language
    text: str
    syllables: tuple[Syllable, ...] = ()
    """Chinese spans only."""


@dataclass(frozen=True)
class Sentence:
    """One sentence, ready for an engine."""

    text: str
    """The sentence as the user wrote it."""

    normalized: str
    """Numbers, units, dates ... written out as words."""

    spans: tuple[Span, ...]
    is_question: bool = False
    emphasis: tuple[int, ...] = field(default=())
    """Indexes into ``normalized`` of stressed characters."""
    citation: tuple[str, ...] = field(default=())
    """Dictionary reading of each character of ``normalized`` ('' where not Chinese), before
    sandhi: for inspection and polyphone benchmarks; engines speak ``syllables``."""

    @property
    def language(self) -> Language:
        """The language most of the sentence is in (by characters)."""
        counts: dict[str, int] = {"zh": 0, "en": 0}
        for span in self.spans:
            counts[span.language] += len(span.text)
        return "en" if counts["en"] > counts["zh"] else "zh"

    @property
    def syllables(self) -> tuple[Syllable, ...]:
        return tuple(s for span in self.spans for s in span.syllables)

    @property
    def pinyin(self) -> list[str]:
        """One entry per Chinese character of ``normalized``."""
        return [s.pinyin for s in self.syllables if is_hanzi(s.char)]

    @property
    def prosody(self) -> str:
        """``normalized`` with Biaobei-style ``#1``–``#4`` marks after the syllables."""
        marks: dict[int, int] = {}
        for syllable in self.syllables:
            if syllable.boundary:
                marks[syllable.index] = max(marks.get(syllable.index, 0), syllable.boundary)
        out: list[str] = []
        text = self.normalized
        for i, char in enumerate(text):
            out.append(char)
            if i in marks:
                out.append(f"#{marks[i]}")
        return "".join(out)
