"""Tone corrector: a small character BiLSTM that revises the rule-based spoken tones.

The rules in ``tone_sandhi`` (neutral-tone list, particles, 一/不, 3-3 sandhi) are right for
most syllables; where the Biaobei speaker departs from them depends on context the rules do not
see (which 3-3 pairs a speaker joins, which 个/来/上 are light). This tagger reads, per
character of an unpunctuated run, the character, its dictionary tone, the rules' tone and its
place in the word (B/M/E/S), and predicts the tone the speaker used. Only the tone digit of a
syllable ever changes, and only where the model is confident (``threshold``).

Weights: ``data/tone_model.npz``, trained on Biaobei 000001–009000 by ``tools/train_tones.py
tagger``. Our own numpy forward pass (no torch at run time): embeddings → one bidirectional LSTM
layer → linear layer over the five tones. The file may hold several such taggers (trained from
different seeds) whose logits are averaged: a single tagger's errors vary with its seed.
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


@dataclass(frozen=True)
class Run:
    """One unpunctuated run of words as ``G2PZh`` hands it over; ``spoken`` is revised in place."""

    words: Sequence[str]
    citation: Sequence[Sequence[str]]
    spoken: list[list[str]]
    listed: Sequence[str]
    locked: Sequence[bool] = ()


# PyTorch's LSTM gate order is i, f, g, o; we lay gates out i, f, o, g so that the three
# sigmoid gates are one contiguous slice.
_GATE_ORDER = (0, 1, 3, 2)


class ToneModel:
    """Thread-safe after construction: ``probabilities`` only reads the weights."""

    def __init__(self, path=None) -> None:
        source = path or resources.files("wyoming_indextts") / "data" / "tone_model.npz"
        with resources.as_file(source) as file:
            data = np.load(file)
            w = {k: data[k] for k in data.files}
        self.char_ids: dict[str, int] = {c: i + 1 for i, c in enumerate(str(w["chars"]))}
        self.threshold = float(w["threshold"])
        # An averaged ensemble is stored as one LSTM whose hidden units are the members' side by
        # side, every weight block diagonal (tools/train_tones.py fuse); it runs member by member.
        members = int(w["members"]) if "members" in w else 1
        total = w["fw_w_hh"].shape[1]
        hidden = total // members
        self._members, self._hidden = members, hidden
        # sigmoid(x) = 0.5 tanh(x / 2) + 0.5: the sigmoid gates' weights are halved here so that one
        # tanh over all gates serves every gate at run time.
        scale = np.concatenate([np.full(3 * total, 0.5), np.ones(total)]).astype(np.float32)

        def reorder(array: np.ndarray) -> np.ndarray:  # rows in PyTorch gate order → ours, scaled
            stacked = np.concatenate([array[g * total : (g + 1) * total] for g in _GATE_ORDER]).astype(np.float32)
            return stacked * (scale[:, None] if stacked.ndim == 2 else scale)

        tables = [w[name].astype(np.float32) for name in ("emb_char", "emb_citation", "emb_rule", "emb_place", "emb_listed")]
        widths = np.cumsum([0] + [t.shape[1] for t in tables])
        # Input projections for every table entry, both directions: five lookups per character.
        self._inputs: dict[str, list[np.ndarray]] = {}
        for direction in ("fw", "bw"):
            w_ih = reorder(w[f"{direction}_w_ih"])
            bias = reorder(w[f"{direction}_b_ih"] + w[f"{direction}_b_hh"])
            projections = [t @ w_ih[:, widths[i] : widths[i + 1]].T for i, t in enumerate(tables)]
            projections[0] = projections[0] + bias
            self._inputs[direction] = projections
        # Both directions advance in one loop (forward at t, backward at T-1-t): per member one
        # matrix product per step with a block-diagonal recurrent matrix, gates laid out
        # [i_fw i_bw | f_fw f_bw | o_fw o_bw | g_fw g_bw].
        w_hh = np.zeros((members, 2 * hidden, 8 * hidden), dtype=np.float32)
        for d, direction in enumerate(("fw", "bw")):
            recurrent = reorder(w[f"{direction}_w_hh"])  # (4 total, total)
            for m in range(members):
                for gate in range(4):
                    rows = recurrent[gate * total + m * hidden : gate * total + (m + 1) * hidden, m * hidden : (m + 1) * hidden]
                    column = gate * 2 * hidden + d * hidden
                    w_hh[m, d * hidden : (d + 1) * hidden, column : column + hidden] = rows.T
        self._w_hh = w_hh
        # Stored output columns: [forward units of all members | backward units of all members];
        # ours follow the members' states: [member 0 forward, backward | member 1 ...].
        out_w = w["out_w"].astype(np.float32)
        self._out_w = np.concatenate([out_w[:, m * hidden : (m + 1) * hidden] if d == 0 else
                                      out_w[:, total + m * hidden : total + (m + 1) * hidden]
                                      for m in range(members) for d in (0, 1)], axis=1).T.copy()
        self._out_b = w["out_b"].astype(np.float32)

    def probabilities_many(self, xs: Sequence[Encoded]) -> list[np.ndarray]:
        """For each run, (characters × 5) probabilities of tones 1–5; the runs go through the
        LSTM side by side (one step per character of the longest run), padding at their ends."""
        members, hidden, two = self._members, self._hidden, 2 * self._hidden
        lengths = [len(x.chars) for x in xs]
        steps = max(lengths)
        inputs = np.zeros((steps, members, len(xs), 8 * hidden), dtype=np.float32)
        for b, x in enumerate(xs):
            n = lengths[b]
            both = []
            for direction in ("fw", "bw"):
                char_p, cit_p, rule_p, place_p, listed_p = self._inputs[direction]
                both.append(char_p[x.chars] + cit_p[x.citation] + rule_p[x.rule] + place_p[x.place] + listed_p[x.listed])
            fw, bw = both
            paired = np.stack([fw.reshape(n, 4, members, hidden), bw[::-1].reshape(n, 4, members, hidden)], axis=2)
            inputs[:n, :, b] = paired.transpose(0, 3, 1, 2, 4).reshape(n, members, 8 * hidden)
        out = np.empty((steps, members, len(xs), two), dtype=np.float32)
        h = np.zeros((members, len(xs), two), dtype=np.float32)
        c = np.zeros((members, len(xs), two), dtype=np.float32)
        gates = np.empty((members, len(xs), 8 * hidden), dtype=np.float32)
        for t in range(steps):
            np.matmul(h, self._w_hh, out=gates)
            gates += inputs[t]
            np.tanh(gates, out=gates)
            sig = gates[..., : 3 * two]
            sig *= 0.5
            sig += 0.5
            c *= gates[..., two : 2 * two]
            c += gates[..., :two] * gates[..., 3 * two :]
            h = gates[..., 2 * two : 3 * two] * np.tanh(c)
            out[t] = h
        result = []
        for b, n in enumerate(lengths):
            forward = out[:n, :, b, :hidden]
            backward = out[n - 1 :: -1, :, b, hidden:] if n else out[:0, :, b, hidden:]
            features = np.concatenate([forward, backward], axis=2).reshape(n, members * two)
            logits = features @ self._out_w + self._out_b
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            result.append(p / p.sum(axis=1, keepdims=True))
        return result

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
        xs = [encode(r.words, r.citation, r.spoken, r.listed, self.char_ids) for r in runs]
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
