"""Tone corrector: a small character BiLSTM that revises the rule-based spoken tones.

The rules in ``tone_sandhi`` (neutral-tone list, particles, 一/不, 3-3 sandhi) are right for
most syllables; where the Biaobei speaker departs from them depends on context the rules do not
see (which 3-3 pairs a speaker joins, which 个/来/上 are light). This tagger reads, per
character of an unpunctuated run, the character, its dictionary tone, the rules' tone and its
place in the word (B/M/E/S), and predicts the tone the speaker used. Only the tone digit of a
syllable ever changes, and only where the model is confident (``threshold``).

Weights: ``data/tone_model.npz``, trained on Biaobei 000001–008000 by ``tools/train_tones.py
tagger``. Our own numpy forward pass (no torch at run time): embeddings → one bidirectional LSTM
layer → linear layer over the five tones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

TONES = "12345"
_BMES = {"B": 0, "M": 1, "E": 2, "S": 3}
_UNK = 0


def _tone_index(syllable: str) -> int:
    digit = syllable[-1:] if syllable[-1:].isdigit() else "5"
    return TONES.index(digit) if digit in TONES else 4


@dataclass(frozen=True)
class Encoded:
    """Per character of a run: character id, dictionary tone, rule tone, place in the word."""

    chars: np.ndarray
    citation: np.ndarray
    rule: np.ndarray
    place: np.ndarray
    listed: np.ndarray


def encode(words: Sequence[str], citation: Sequence[Sequence[str]], spoken: Sequence[Sequence[str]],
           listed: Sequence[str], char_ids: dict[str, int]) -> Encoded:
    """The model's inputs for one run (shared by training and run time so they cannot drift).

    ``spoken``: the rules' tones without the learned word list; ``listed``: per character the
    list's tone or ``.`` (index 5): the tagger learns how far to trust each.
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
    return Encoded(as_array(chars), as_array(cit), as_array(rule), as_array(place), as_array(listed_ids))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


class ToneModel:
    """Thread-safe after construction: ``probabilities`` only reads the weights."""

    def __init__(self, path=None) -> None:
        source = path or resources.files("wyoming_indextts") / "data" / "tone_model.npz"
        with resources.as_file(source) as file:
            data = np.load(file)
            w = {k: data[k] for k in data.files}
        self.char_ids: dict[str, int] = {c: i + 1 for i, c in enumerate(str(w["chars"]))}
        self.threshold = float(w["threshold"])
        tables = [w[name].astype(np.float32) for name in ("emb_char", "emb_citation", "emb_rule", "emb_place", "emb_listed")]
        widths = np.cumsum([0] + [t.shape[1] for t in tables])
        # Input projections for every table entry, both directions: four lookups per step.
        self._inputs = {}
        for direction in ("fw", "bw"):
            w_ih = w[f"{direction}_w_ih"].astype(np.float32)
            bias = (w[f"{direction}_b_ih"] + w[f"{direction}_b_hh"]).astype(np.float32)
            projections = [t @ w_ih[:, widths[i] : widths[i + 1]].T for i, t in enumerate(tables)]
            projections[0] = projections[0] + bias
            self._inputs[direction] = projections
        # Both directions advance in one loop (forward at t, backward at T-1-t): one matrix
        # product per step with a block-diagonal recurrent matrix, gates laid out
        # [i_fw i_bw | f_fw f_bw | g_fw g_bw | o_fw o_bw].
        hidden = w["fw_w_hh"].shape[1]
        w_hh = np.zeros((2 * hidden, 8 * hidden), dtype=np.float32)
        for d, direction in enumerate(("fw", "bw")):
            recurrent = w[f"{direction}_w_hh"].astype(np.float32).T  # (hidden, 4 hidden)
            for gate in range(4):
                column = gate * 2 * hidden + d * hidden
                w_hh[d * hidden : (d + 1) * hidden, column : column + hidden] = recurrent[:, gate * hidden : (gate + 1) * hidden]
        self._w_hh = w_hh
        self._out_w = w["out_w"].astype(np.float32).T.copy()
        self._out_b = w["out_b"].astype(np.float32)
        self._hidden = hidden

    def probabilities(self, x: Encoded) -> np.ndarray:
        """(characters × 5) probabilities of tones 1–5."""
        steps = len(x.chars)
        hidden = self._hidden
        per_direction = []
        for direction in ("fw", "bw"):
            char_p, cit_p, rule_p, place_p, listed_p = self._inputs[direction]
            per_direction.append(char_p[x.chars] + cit_p[x.citation] + rule_p[x.rule] + place_p[x.place] + listed_p[x.listed])
        fw, bw = per_direction
        inputs = np.stack([fw.reshape(steps, 4, hidden), bw[::-1].reshape(steps, 4, hidden)], axis=2).reshape(steps, 8 * hidden)
        out = np.empty((steps, 2 * hidden), dtype=np.float32)
        h = np.zeros(2 * hidden, dtype=np.float32)
        c = np.zeros(2 * hidden, dtype=np.float32)
        two = 2 * hidden
        for t in range(steps):
            gates = inputs[t] + h @ self._w_hh
            sig = _sigmoid(gates)
            c = sig[two : 2 * two] * c + sig[:two] * np.tanh(gates[2 * two : 3 * two])
            h = sig[3 * two :] * np.tanh(c)
            out[t, :hidden] = h[:hidden]
            out[steps - 1 - t, hidden:] = h[hidden:]
        logits = out @ self._out_w + self._out_b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def correct(self, words: Sequence[str], citation: Sequence[Sequence[str]], spoken: list[list[str]],
                listed: Sequence[str], locked: Sequence[bool] = ()) -> None:
        """Revise ``spoken`` (the rules' tones without the word list) in place: the tone the model
        is sure of (≥ threshold) replaces the rules', else the list's tone where it has one."""
        x = encode(words, citation, spoken, listed, self.char_ids)
        if not len(x.chars):
            return
        p = self.probabilities(x)
        best = p.argmax(axis=1)
        i = 0
        for w, syllables in enumerate(spoken):
            for k, syllable in enumerate(syllables):
                if not (locked and locked[w]) and syllable:
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
