"""Text → sentences ready for an engine. Pure, deterministic, and cheap."""

from __future__ import annotations

from dataclasses import replace

from .emphasis import find_emphasis
from .g2p_zh import G2PZh
from .normalize import normalize_zh
from .normalize_en import normalize_en
from .prosody import is_question, predict_boundaries
from .g2p_zh import LETTER_PINYIN, Reading
from .segment import ScriptRun, is_chinese, split_scripts, split_sentences
from .sentence import Sentence, Span, Syllable

# Sentences are first cut from the raw text without a length limit, so each can be
# normalized in its own language before the long ones are cut at clause marks.
_UNLIMITED = 1 << 30


class Frontend:
    """Normalizes, segments and reads text for the voices.

    One instance is shared by all requests: it holds no per-request state.
    """

    def __init__(self, lexicon: dict[str, str] | None = None, max_sentence_chars: int = 80) -> None:
        self._g2p = G2PZh(lexicon)
        self._max_sentence_chars = max_sentence_chars

    def sentences(self, text: str) -> list[Sentence]:
        out: list[Sentence] = []
        # The sentence splitter never cuts "2.5" or "15:30"; Chinese sentences are normalized
        # (numbers → Chinese words) before their long ones are cut at clause marks, English
        # sentences are left for the English voice, which reads numbers in English.
        for raw in split_sentences(text, _UNLIMITED):
            prepared = normalize_zh(raw) if is_chinese(raw) else raw
            out.extend(self.analyze(part) for part in split_sentences(prepared, self._max_sentence_chars))
        return out

    def analyze(self, text: str) -> Sentence:
        """One sentence: normalized text, readings, boundaries, sentence type.

        A sentence that is not Chinese (:func:`is_chinese`) is one English span, normalized only where
        the English voices' phonemizer reads wrongly (units, money, dates: it already says
        "25" as "twenty-five"). A Chinese sentence is cut by :func:`split_scripts`: Chinese
        stretches and acronyms become "zh" spans with syllables; English words become "en"
        spans with no syllables.
        """
        if not is_chinese(text):
            english = normalize_en(text)
            return Sentence(text=text, normalized=english, spans=(Span("en", english),), is_question=text.rstrip().endswith("?"))
        normalized = normalize_zh(text)
        # One lexical analysis per sentence (words, parts of speech, names), read by the
        # polyphone decision and the boundary model alike.
        analysis = self._g2p.lexical(normalized)
        readings, citation = self._g2p.analyze(normalized, analysis)
        levels = predict_boundaries(normalized, readings, analysis)
        spans = _spans(normalized, readings, levels)
        return Sentence(
            text=text,
            normalized=normalized,
            spans=spans,
            is_question=is_question(normalized),
            emphasis=find_emphasis(normalized),
            citation=tuple(citation),
        )


def _spans(normalized: str, readings: list[Reading], levels: list[int]) -> tuple[Span, ...]:
    """Readings → syllables, grouped into language spans by :func:`split_scripts`.

    Readings come from the whole sentence (so segmentation and prosody see the full
    context) and are then assigned to spans by position. Acronyms are read from
    LETTER_PINYIN here rather than trusting the G2P's treatment of Latin letters, so the
    letter rule lives in one place; adjacent Chinese stretches and acronyms share one span.
    """
    level_at = {reading.index: level for reading, level in zip(readings, levels)}
    spans: list[Span] = []
    pending: list[tuple[ScriptRun, list[Syllable]]] = []

    def flush() -> None:
        syllables = tuple(s for _, group in pending for s in group)
        if syllables:
            start, end = pending[0][0].start, pending[-1][0].end
            spans.append(Span("zh", normalized[start:end], syllables))
        pending.clear()

    for run in split_scripts(normalized):
        if run.kind == "en":
            flush()
            spans.append(Span("en", run.text))
            continue
        syllables: list[Syllable] = []
        if run.kind == "letters":
            for offset, letter in enumerate(run.text):
                names = LETTER_PINYIN.get(letter.upper(), ())
                for k, pinyin in enumerate(names):
                    word_end = offset == len(run.text) - 1 and k == len(names) - 1
                    # The prosody step already puts at least #1 where the script changes, and none
                    # between a letter code and its digits (PM二点五).
                    boundary = level_at.get(run.start + offset, 1) if word_end else 0
                    syllables.append(Syllable(letter, pinyin, run.start + offset, boundary))
        else:
            for reading, level in zip(readings, levels):
                if run.start <= reading.index < run.end and not reading.char.isascii():
                    for k, pinyin in enumerate(reading.pinyin):
                        last = k == len(reading.pinyin) - 1
                        syllables.append(Syllable(reading.char, pinyin, reading.index, level if last else 0))
        pending.append((run, syllables))
    flush()
    return tuple(spans)


def split_head(sentence: Sentence, min_head: int = 4, max_head: int = 12) -> tuple[Sentence, ...]:
    """Cut a long Chinese sentence after an early phrase boundary (#2 or #3).

    Used for the first sentence of a request: the acoustic model's time grows with the
    sentence, so speaking a short head first gets audio out sooner; a phrase boundary is
    where a speaker may pause anyway. Returns the sentence unchanged when it is short,
    mixes languages, or has no boundary in reach.
    """
    if len(sentence.spans) != 1 or sentence.spans[0].language != "zh":
        return (sentence,)
    syllables = sentence.spans[0].syllables
    if len(syllables) <= max_head + min_head:
        return (sentence,)
    cut = next((i for i in range(min_head - 1, max_head) if syllables[i].boundary >= 2), None)
    if cut is None:
        return (sentence,)
    head_end = syllables[cut].index + 1
    tail_start = syllables[cut + 1].index
    text = sentence.normalized
    head = Sentence(
        text=text[:head_end],
        normalized=text,
        spans=(Span("zh", text[:head_end], tuple(replace(s, boundary=4) if k == cut else s for k, s in enumerate(syllables[: cut + 1]))),),
        is_question=False,
        emphasis=sentence.emphasis,
    )
    tail = Sentence(
        text=text[tail_start:],
        normalized=text,
        spans=(Span("zh", text[tail_start:], syllables[cut + 1 :]),),
        is_question=sentence.is_question,
        emphasis=sentence.emphasis,
    )
    return head, tail
