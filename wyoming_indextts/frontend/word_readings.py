"""What the lexical analysis says about a polyphone's reading.

Two sources, both keyed on the word the analyser (``lexical.py``) puts the character in:

* **Part of speech** (``data/polyphone_pos.txt``, learned by ``tools/train_polyphone.py pos``):
  how often each reading of a character came with each tag of its word, counted on the CPP dev
  sentences and on the Biaobei readings. 还 in a verb is huán and in an adverb hái, 长 in a verb
  zhǎng and in an adjective cháng, 得 as a particle de. :meth:`PosPreferences.preference` turns
  the counts into how much likelier each reading is with this tag than for the character at
  all; ``g2p_zh.PolyphoneWeights`` adds that to the model's scores.
* **Names** (``data/name_readings.txt``, written by hand): a surname starting a person's name
  (曾 zēng, 单 shàn), a place name inside a place or organisation (朝阳区 cháo, 六安 lù).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .lexical import Word

POS_FILE = "polyphone_pos.txt"
NAMES_FILE = "name_readings.txt"


def _rows(name: str) -> list[list[str]]:
    """Tab-separated rows of a package data file (``#`` comments); none when it is missing."""
    try:
        text = (resources.files("wyoming_indextts") / "data" / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@dataclass(frozen=True)
class PosPreferences:
    """Reading counts per (character, tag), one table per source, and how much each weighs.

    ``preference`` is, summed over the sources with their weights, log P(reading | character,
    tag) − log P(reading | character): what the tag adds to what the model already knows of the
    character. P(reading | character, tag) is smoothed toward P(reading | character) with
    ``smoothing`` pseudo-counts. The weights and the smoothing were chosen by 5-fold
    cross-validation on CPP dev (tools/train_polyphone.py pos --crossval, docs/BENCHMARKS.md).
    """

    counts: dict[str, dict[tuple[str, str], Counter[str]]]
    weights: dict[str, float]
    smoothing: float
    totals: dict[str, dict[str, Counter[str]]]  # per source and character, over all tags
    # Where the analyser is less sure than this of the word's tag (``lexical.Analysis.confidence``)
    # and the dictionary words around the character read it otherwise than the tag prefers, the
    # G2P leaves the preference out (g2p_zh): a hesitant tag (还 in 请按时还书: adverb 0.65, verb
    # 0.33) is not worth more than the word 还书. Chosen with the other settings by
    # cross-validation on CPP dev (tools/train_polyphone.py pos --crossval).
    min_confidence: float = 0.0

    @classmethod
    def from_counts(cls, counts: dict[str, dict[tuple[str, str], Counter[str]]], weights: dict[str, float],
                    smoothing: float = 3.0, min_confidence: float = 0.0) -> PosPreferences:
        totals: dict[str, dict[str, Counter[str]]] = {}
        for source, table in counts.items():
            per_char = totals.setdefault(source, {})
            for (char, _), counted in table.items():
                per_char.setdefault(char, Counter()).update(counted)
        return cls(counts, weights, smoothing, totals, min_confidence)

    @classmethod
    def load(cls, name: str = POS_FILE) -> PosPreferences:
        counts: dict[str, dict[tuple[str, str], Counter[str]]] = {}
        weights: dict[str, float] = {}
        smoothing = 3.0
        min_confidence = 0.0
        for row in _rows(name):
            if row[0] == "weight":  # weight<TAB>source<TAB>value
                weights[row[1]] = float(row[2])
                continue
            if row[0] == "smoothing":
                smoothing = float(row[1])
                continue
            if row[0] == "confidence":
                min_confidence = float(row[1])
                continue
            source, char, tag, readings = row
            values = readings.split()
            counts.setdefault(source, {})[(char, tag)] = Counter(
                {r: int(n) for r, n in zip(values[0::2], values[1::2])})
        return cls.from_counts(counts, weights, smoothing, min_confidence)

    def table(self, candidates: Mapping[str, Sequence[str]]) -> dict[tuple[str, str], dict[str, float]]:
        """:meth:`preference` for every (character, tag) counted, over the character's
        ``candidates`` (the polyphone model's): what the G2P looks up per polyphone at run time."""
        keys = {key for table in self.counts.values() for key in table}
        out: dict[tuple[str, str], dict[str, float]] = {}
        for char, tag in keys:
            readings = candidates.get(char)
            if readings:
                preference = self.preference(char, tag, tuple(readings))
                if preference:
                    out[(char, tag)] = preference
        return out

    def preference(self, char: str, tag: str, candidates: dict[str, float] | tuple[str, ...]) -> dict[str, float] | None:
        total: Counter[str] = Counter()
        for source, table in self.counts.items():
            weight = self.weights.get(source, 0.0)
            counted = table.get((char, tag))
            if not weight or not counted:
                continue
            everywhere = self.totals[source][char]
            for reading, value in self._log_ratio(everywhere, counted, candidates).items():
                total[reading] += weight * value
        return dict(total) or None

    def _log_ratio(self, everywhere: Counter[str], counted: Counter[str], candidates) -> dict[str, float]:
        size = sum(everywhere.values())
        prior = {r: (everywhere[r] + 1) / (size + len(candidates)) for r in candidates}
        n = sum(counted.values())
        return {r: math.log((counted[r] + self.smoothing * prior[r]) / (n + self.smoothing)) - math.log(prior[r])
                for r in candidates}


@dataclass(frozen=True)
class NameReadings:
    """Surnames (PER) and place names (LOC) whose polyphones read otherwise inside names."""

    surnames: dict[str, tuple[str, ...]]
    places: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, name: str = NAMES_FILE) -> NameReadings:
        surnames: dict[str, tuple[str, ...]] = {}
        places: dict[str, tuple[str, ...]] = {}
        for kind, word, pinyin in _rows(name):
            (surnames if kind == "PER" else places)[word] = tuple(pinyin.split())
        return cls(surnames, places)

    def reading(self, word: Word, index: int) -> str | None:
        """The reading of the character at ``index`` (inside ``word``) that a name gives it, if any
        (``g2p_zh.PolyphoneWeights.name_bonus`` says how much it weighs).

        A surname starting a person's name (曾志伟; also alone, where LAC tags it PER before a
        title: 曾|先生); a place name anywhere inside a LOC or ORG (朝阳区人民政府)."""
        offset = index - word.start
        if word.tag == "PER":
            for size in (2, 1):
                surname = self.surnames.get(word.text[:size])
                if surname and offset < size <= len(word.text):
                    return surname[offset]
        elif word.tag in ("LOC", "ORG"):
            for start in range(max(0, offset - 2), offset + 1):
                for end in range(offset + 1, min(len(word.text), start + 3) + 1):
                    place = self.places.get(word.text[start:end])
                    if place and end - start > 1:
                        return place[offset - start]
        return None


@lru_cache(maxsize=1)
def default_pos_preferences() -> PosPreferences:
    return PosPreferences.load()


@lru_cache(maxsize=1)
def default_name_readings() -> NameReadings:
    return NameReadings.load()
