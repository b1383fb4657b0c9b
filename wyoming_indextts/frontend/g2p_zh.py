"""Mandarin grapheme-to-phoneme: words, toned pinyin as spoken, letters by Chinese letter names."""

from __future__ import annotations

from dataclasses import dataclass

from pypinyin import Style, lazy_pinyin
from pypinyin.seg.mmseg import seg as _mmseg

from .sentence import is_hanzi

# How Chinese speakers name Latin letters, in pinyin the default voice can say.
LETTER_PINYIN: dict[str, tuple[str, ...]] = {
    "A": ("ei1",), "B": ("bi4",), "C": ("xi1",), "D": ("di4",), "E": ("yi4",),
    "F": ("ai2", "fu5"), "G": ("ji4",), "H": ("ai1", "qi1"), "I": ("ai4",),
    "J": ("jie4",), "K": ("kei4",), "L": ("ai2", "lou5"), "M": ("ai2", "mu5"),
    "N": ("en1",), "O": ("ou1",), "P": ("pi1",), "Q": ("kiu1",), "R": ("a4",),
    "S": ("ai2", "si1"), "T": ("ti4",), "U": ("you1",), "V": ("wei1",),
    "W": ("da2", "bu5", "liu5"), "X": ("ai2", "ke4", "si1"), "Y": ("wai4",), "Z": ("zei4",),
}


@dataclass(frozen=True)
class Reading:
    """The pinyin of one character or letter, and whether it starts a word."""

    index: int
    char: str
    pinyin: tuple[str, ...]
    word_start: bool


class G2PZh:
    """Text → readings. ``lexicon`` maps words to space-separated pinyin and wins over everything."""

    def __init__(self, lexicon: dict[str, str] | None = None) -> None:
        self._lexicon = {w: tuple(p.split()) for w, p in (lexicon or {}).items() if len(p.split()) == len(w)}

    def __call__(self, text: str) -> list[Reading]:
        readings: list[Reading] = []
        position = 0
        for word in self._words(text):
            start = position
            position += len(word)
            if all(is_hanzi(c) for c in word):
                pinyins = self._lexicon.get(word) or self._pinyin(word)
                for offset, (char, pinyin) in enumerate(zip(word, pinyins)):
                    readings.append(Reading(start + offset, char, (pinyin,), offset == 0))
                continue
            for offset, char in enumerate(word):
                letter = LETTER_PINYIN.get(char.upper()) if char.isascii() else None
                if letter:
                    readings.append(Reading(start + offset, char, letter, True))
                elif is_hanzi(char):
                    readings.append(Reading(start + offset, char, (self._pinyin(char)[0],), True))
        return readings

    def _words(self, text: str) -> list[str]:
        """Lexicon words first (longest match), so a user's entry is never cut apart; mmseg for the rest."""
        words: list[str] = []
        pending = ""
        longest = max((len(w) for w in self._lexicon), default=0)
        i = 0
        while i < len(text):
            match = next(
                (text[i : i + n] for n in range(min(longest, len(text) - i), 0, -1) if text[i : i + n] in self._lexicon),
                None,
            )
            if match is None:
                pending += text[i]
                i += 1
                continue
            words.extend(_mmseg.cut(pending) if pending else [])
            pending = ""
            words.append(match)
            i += len(match)
        words.extend(_mmseg.cut(pending) if pending else [])
        return words

    @staticmethod
    def _pinyin(word: str) -> list[str]:
        pinyins = lazy_pinyin(
            word, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=True,
            errors=lambda chars: ["" for _ in chars],
        )
        if len(pinyins) != len(word):
            pinyins = [lazy_pinyin(c, style=Style.TONE3, neutral_tone_with_five=True)[0] for c in word]
        return [p if p and p[-1].isdigit() else (p + "5" if p else "de5") for p in pinyins]
