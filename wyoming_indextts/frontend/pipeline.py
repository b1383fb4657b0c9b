"""Text → sentences ready for an engine. Pure, deterministic, and cheap."""

from __future__ import annotations

from .emphasis import find_emphasis
from .g2p_zh import G2PZh
from .normalize import normalize_zh
from .prosody import is_question, predict_boundaries
from .segment import split_sentences
from .sentence import Sentence, Span, Syllable, is_hanzi


class Frontend:
    """Normalizes, segments and reads text for the voices.

    One instance is shared by all requests: it holds no per-request state.
    """

    def __init__(self, lexicon: dict[str, str] | None = None, max_sentence_chars: int = 80) -> None:
        self._g2p = G2PZh(lexicon)
        self._max_sentence_chars = max_sentence_chars

    def sentences(self, text: str) -> list[Sentence]:
        # Normalize before splitting, so "2.5" or "15:30" are never cut at their punctuation.
        normalized = normalize_zh(text)
        return [self.analyze(part) for part in split_sentences(normalized, self._max_sentence_chars)]

    def analyze(self, text: str) -> Sentence:
        """One sentence: normalized text, readings, boundaries, sentence type."""
        normalized = normalize_zh(text)
        if not any(is_hanzi(c) for c in normalized):
            return Sentence(text=text, normalized=normalized, spans=(Span("en", normalized),))
        readings = self._g2p(normalized)
        levels = predict_boundaries(normalized, readings)
        syllables: list[Syllable] = []
        for reading, level in zip(readings, levels):
            for k, pinyin in enumerate(reading.pinyin):
                last = k == len(reading.pinyin) - 1
                syllables.append(Syllable(reading.char, pinyin, reading.index, level if last else 0))
        return Sentence(
            text=text,
            normalized=normalized,
            spans=(Span("zh", normalized, tuple(syllables)),),
            is_question=is_question(normalized),
            emphasis=find_emphasis(normalized),
        )
