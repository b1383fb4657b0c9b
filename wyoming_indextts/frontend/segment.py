"""Split text into sentences, and sentences into runs of one script."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .sentence import is_hanzi

# A sentence ends at Chinese/ASCII terminal punctuation (an ASCII period only when
# it is not inside a number such as 2.5) or at a line break; closing quotes stay with it.
_SENTENCE_END = re.compile(
    r"""(?:[。！？!?；;…]+|\.(?!\d)(?=\s|$|[^\x00-\x7f])|\n+)[”’"'）)\]」』]*"""
)
# ASCII comma and colon only when not between digits ("1,000", "15:30" are not clause ends).
_CLAUSE_END = re.compile(r"[，、：]|[,:](?!\d)")


def split_sentences(text: str, max_chars: int = 80) -> list[str]:
    """Split into sentences; a sentence longer than ``max_chars`` is split at clause marks."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        sentences.append(text[start : match.end()])
        start = match.end()
    sentences.append(text[start:])
    out: list[str] = []
    for sentence in sentences:
        sentence = sentence.strip()
        if not _has_content(sentence):
            continue
        out.extend(_split_long(sentence, max_chars))
    return out


def _split_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    current = ""
    start = 0
    for match in _CLAUSE_END.finditer(sentence):
        clause = sentence[start : match.end()]
        start = match.end()
        if current and len(current) + len(clause) > max_chars:
            pieces.append(current)
            current = ""
        current += clause
    current += sentence[start:]
    if current:
        pieces.append(current)
    # A clause with no marks at all is cut hard so no engine call is unbounded.
    return [p[i : i + max_chars] for p in pieces for i in range(0, len(p), max_chars) if _has_content(p[i : i + max_chars])]


def _has_content(text: str) -> bool:
    return any(c.isalnum() for c in text)


def has_hanzi(text: str) -> bool:
    return any(is_hanzi(c) for c in text)


# Full-width punctuation that English text does not use (the dashes and ellipsis it shares are left out).
_CHINESE_PUNCTUATION = frozenset("。，、；：？！「」『』《》（）【】")


def is_chinese(text: str) -> bool:
    """Chinese characters, or Chinese punctuation and no Latin word (acronyms are letters the
    Chinese voice names): 「3+5=8。」 and 「PM2.5：35。」 are read in Chinese."""
    if has_hanzi(text):
        return True
    return any(c in _CHINESE_PUNCTUATION for c in text) and all(
        classify_latin(run.group()) == "letters" for run in _LATIN_RUN.finditer(text)
    )


# In a text stream a period at the very end may still become "2.5", so only
# count it as an end once the next character (a space) has arrived.
_STREAM_END = re.compile(r"""(?:[。！？!?；;…]+|\.(?=\s)|\n+)[”’"'）)\]」』]*""")


def complete_prefix(text: str) -> tuple[str, str]:
    """Split streamed text into (complete sentences, unfinished rest)."""
    last = None
    for last in _STREAM_END.finditer(text):
        pass
    if last is None:
        return "", text
    return text[: last.end()], text[last.end() :]


# --- Mixed Chinese/English -------------------------------------------------------------
#
# Inside a sentence that has Chinese characters, every run of Latin words is either
#  * "letters": read by the Chinese voice with Chinese letter names (g2p_zh.LETTER_PINYIN),
#    which is how Mandarin speakers say acronyms: PM2.5 → "pi ai mu 二点五", USB, TV, a lone
#    letter such as A区; or
#  * "en": a word or phrase spoken by the English voice and spliced in (Home Assistant,
#    Wi-Fi, iPhone).
# Only a run that is one token of 1-4 capital letters (or a single letter) counts as
# letters; anything longer or in lower case is a word and goes to the English voice, so no
# English word is ever dropped or spelled out letter by letter.

RunKind = Literal["zh", "en", "letters"]

_WORD = r"[A-Za-z]+(?:['’][A-Za-z]+)*(?:[-.&+][A-Za-z]+(?:['’][A-Za-z]+)*)*"
_LATIN_RUN = re.compile(rf"{_WORD}(?:[ \t]+{_WORD})*")
_ACRONYM = re.compile(r"[A-Z]{1,4}|[A-Za-z]")
ACRONYM_MAX_LETTERS = 4


@dataclass(frozen=True)
class ScriptRun:
    """A stretch ``text[start:end]`` of one kind inside a sentence's normalized text."""

    kind: RunKind
    start: int
    end: int
    text: str


def classify_latin(token: str) -> RunKind:
    return "letters" if _ACRONYM.fullmatch(token) else "en"


def split_scripts(text: str) -> list[ScriptRun]:
    """Cut a (normalized, Chinese) sentence into Chinese stretches and Latin runs, in order.

    Chinese stretches keep their punctuation and spaces; every Latin letter of ``text``
    lands in exactly one "en" or "letters" run.
    """
    runs: list[ScriptRun] = []
    position = 0
    for match in _LATIN_RUN.finditer(text):
        if match.start() > position:
            runs.append(ScriptRun("zh", position, match.start(), text[position : match.start()]))
        runs.append(ScriptRun(classify_latin(match.group()), match.start(), match.end(), match.group()))
        position = match.end()
    if position < len(text):
        runs.append(ScriptRun("zh", position, len(text), text[position:]))
    return runs
