"""Tone corrector: a small character BiLSTM that revises the rule-based spoken tones.

The rules in ``tone_sandhi`` (neutral-tone list, particles, 一/不, 3-3 sandhi) are right for
most syllables; where the Biaobei speaker departs from them depends on context the rules do not
see (which 3-3 pairs a speaker joins, which 个/来/上 are light). This tagger reads, per
character of an unpunctuated run, the character, its dictionary tone, the rules' tone, its
place in the word (B/M/E/S), the word list's tone and the lexical analyser's tag and place in its
word, and predicts the tone the speaker used. Only the tone digit of a
syllable ever changes, and only where the model is confident (``threshold``).

Weights: ``data/tone_model.onnx``, trained on Biaobei 000001–009000 by ``tools/train_tones.py
tagger``: embeddings → one bidirectional LSTM layer → linear layer over the five tones, run by
ONNX Runtime (a numpy loop over the characters spent most of its time in per-step call
overhead: 0.85 ms of a CPP sentence's 4.1 ms). The file holds several such taggers (trained from
different seeds) whose logits are averaged: a single tagger's errors vary with its seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

TONES = "12345"
_BMES = {"B": 0, "M": 1, "E": 2, "S": 3}
_UNK = 0
# Analysis.segmentation's places (0 none, 1 begin, 2 middle, 3 end, 4 single) per tag id.
LEXICAL_PLACES = 5
INPUTS = ("chars", "citation", "rule", "place", "listed", "lexical")


def _tone_index(syllable: str) -> int:
    digit = syllable[-1:] if syllable[-1:].isdigit() else "5"
    return TONES.index(digit) if digit in TONES else 4


@dataclass(frozen=True)
class Encoded:
    """Per character of a run: character id, dictionary tone, rule tone, place in the word,
    the word list's tone, and the lexical analyser's tag and place in its word."""

    chars: np.ndarray
    citation: np.ndarray
    rule: np.ndarray
    place: np.ndarray
    listed: np.ndarray
    lexical: np.ndarray


def encode(words: Sequence[str], citation: Sequence[Sequence[str]], spoken: Sequence[Sequence[str]],
           listed: Sequence[str], lexical: Sequence[tuple[int, int]], char_ids: dict[str, int]) -> Encoded:
    """The model's inputs for one run (shared by training and run time so they cannot drift).

    ``spoken``: the rules' tones without the learned word list; ``listed``: per character the
    list's tone or ``.`` (index 5): the tagger learns how far to trust each; ``lexical``: per
    character, ``Analysis.segmentation`` (place in the analyser's word, its tag's id).
    """
    chars: list[int] = []
    cit: list[int] = []
    rule: list[int] = []
    place: list[int] = []
    for word, dictionary, surface in zip(words, citation, spoken):
        n = len(word)
        for k, char in enumerate(word):
            chars.append(char_ids.get(char, _UNK))
            cit.append(_tone_index(dictionary[k]))
            rule.append(_tone_index(surface[k]))
            place.append(_BMES["S" if n == 1 else "B" if k == 0 else "E" if k == n - 1 else "M"])
    as_array = lambda values: np.asarray(values, dtype=np.int64)  # noqa: E731
    listed_ids = [5 if d == "." else TONES.index(d) for d in listed]
    lexical_ids = [tag * LEXICAL_PLACES + where for where, tag in lexical]
    return Encoded(as_array(chars), as_array(cit), as_array(rule), as_array(place), as_array(listed_ids),
                   as_array(lexical_ids))


@dataclass(frozen=True)
class Run:
    """One unpunctuated run of words as ``G2PZh`` hands it over; ``spoken`` is revised in place."""

    words: Sequence[str]
    citation: Sequence[Sequence[str]]
    spoken: list[list[str]]
    listed: Sequence[str]
    lexical: Sequence[tuple[int, int]]
    locked: Sequence[bool] = ()


class ToneModel:
    """Thread-safe after construction (ONNX Runtime sessions are)."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        from ..onnx import packaged_session

        self._session = packaged_session("tone_model.onnx", path, threads)
        meta = self._session.get_modelmeta().custom_metadata_map
        self.char_ids: dict[str, int] = {c: i + 1 for i, c in enumerate(meta["chars"])}
        self.threshold = float(meta["threshold"])

    def probabilities_many(self, xs: Sequence[Encoded]) -> list[np.ndarray]:
        """For each run, (characters × 5) probabilities of tones 1–5: the runs go through the
        graph together, padded at their ends (each run's backward pass starts at its own end)."""
        lengths = [len(x.chars) for x in xs]
        steps = max(lengths)
        feeds: dict[str, np.ndarray] = {}
        for name in INPUTS:
            padded = np.zeros((len(xs), steps), dtype=np.int64)
            for b, x in enumerate(xs):
                padded[b, : lengths[b]] = getattr(x, name)
            feeds[name] = padded
        feeds["lengths"] = np.asarray(lengths, dtype=np.int32)
        probabilities = self._session.run(None, feeds)[0]
        return [probabilities[b, :n] for b, n in enumerate(lengths)]

    def probabilities(self, x: Encoded) -> np.ndarray:
        """(characters × 5) probabilities of tones 1–5 for one run."""
        return self.probabilities_many([x])[0]

    def correct(self, runs: Sequence[Run]) -> None:
        """Revise each run's ``spoken`` (the rules' tones without the word list) in place: the
        tone the model is sure of (≥ threshold) replaces the rules', else the list's tone where
        it has one, else the rules' stays. Locked (user lexicon) words are left alone."""
        runs = [r for r in runs if r.words]
        if not runs:
            return
        xs = [encode(r.words, r.citation, r.spoken, r.listed, r.lexical, self.char_ids) for r in runs]
        for run, x, p in zip(runs, xs, self.probabilities_many(xs)):
            best = p.argmax(axis=1)
            i = 0
            for w, syllables in enumerate(run.spoken):
                for k, syllable in enumerate(syllables):
                    if not (run.locked and run.locked[w]) and syllable:
                        b = int(best[i])
                        fallback = int(x.listed[i]) if x.listed[i] < 5 else int(x.rule[i])
                        digit = b if p[i, b] >= self.threshold else fallback
                        syllables[k] = (syllable[:-1] if syllable[-1:].isdigit() else syllable) + TONES[digit]
                    i += 1


@lru_cache(maxsize=1)
def default_model() -> ToneModel | None:
    """The shipped tagger, or None where its weights are absent (the rules alone then)."""
    try:
        return ToneModel()
    except FileNotFoundError:
        return None
