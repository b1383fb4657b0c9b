"""Polyphone disambiguation: a small character BiLSTM picks the reading of 行, 长, 了 ... in context.

The weights (``data/polyphone.npz``, 1.5 MB) are g2pM's (Park & Lee 2020, Apache-2.0; trained
on the CPP train split), nudged toward the Biaobei readings (``tools/train_polyphone.py finetune``;
see ``data/README.md``). This is our own numpy forward pass: embedding → one bidirectional LSTM
layer (32 units each way) → ReLU layer → logits over 876 toned syllables, masked to the readings
the character can have. Only the characters in the model's polyphone list go through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np

_PAD, _UNK, _BOS, _EOS = 0, 1, 2, 3


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


class PolyphoneModel:
    """Thread-safe after construction: ``predict`` only reads the weights."""

    def __init__(self, path=None) -> None:
        source = path or resources.files("wyoming_indextts") / "data" / "polyphone.npz"
        with resources.as_file(source) if not isinstance(source, str) else _nullpath(source) as file:
            data = np.load(file)
            weights = {k: data[k] for k in data.files}
        self._char_ids = {c: i for i, c in enumerate(weights["chars"].tolist()) if i >= 4}
        self.classes: list[str] = [c.replace("u:", "v") for c in weights["classes"].tolist()]
        class_ids = {c: i for i, c in enumerate(self.classes)}
        embedding = weights["embedding"].astype(np.float32)
        # Input projections for every vocabulary entry, both directions: one lookup per step at run time.
        # Gates reordered from PyTorch's (i, f, g, o) to (i, f, o, g): one sigmoid and one tanh
        # per step instead of four numpy calls.
        size = weights["fw_w_hh"].shape[1]
        order = np.r_[0 : 2 * size, 3 * size : 4 * size, 2 * size : 3 * size]
        self._fw_in = np.ascontiguousarray((embedding @ weights["fw_w_ih"].T + weights["fw_b_ih"] + weights["fw_b_hh"])[:, order])
        self._bw_in = np.ascontiguousarray((embedding @ weights["bw_w_ih"].T + weights["bw_b_ih"] + weights["bw_b_hh"])[:, order])
        self._fw_hh = np.ascontiguousarray(weights["fw_w_hh"].T[:, order])
        self._bw_hh = np.ascontiguousarray(weights["bw_w_hh"].T[:, order])
        self._fc1_w, self._fc1_b = weights["fc1_w"].T.copy(), weights["fc1_b"]
        self._fc2_w, self._fc2_b = weights["fc2_w"].T.copy(), weights["fc2_b"]
        # Which characters are polyphones, and the readings each may take.
        self.candidates: dict[str, tuple[str, ...]] = {}
        for entry in weights["polyphones"].tolist():
            char, _, readings = entry.partition(":")
            self.candidates[char] = tuple(r for r in readings.split(",") if r in class_ids)
        self._candidate_ids = {
            char: np.array([class_ids[r] for r in readings], dtype=np.int64)
            for char, readings in self.candidates.items()
        }
        self._hidden = self._fw_hh.shape[0]

    def is_polyphone(self, char: str) -> bool:
        return char in self._candidate_ids

    def scores(self, text: str, positions: Sequence[int]) -> list[dict[str, float]]:
        """For each position, the softmax probability of each candidate reading."""
        if not positions:
            return []
        ids = [_BOS] + [self._char_ids.get(c, _UNK) for c in text] + [_EOS]
        steps = len(ids)
        fw_x = self._fw_in[ids]
        bw_x = self._bw_in[ids]
        hidden = self._hidden
        fw_out = np.empty((steps, hidden), dtype=np.float32)
        bw_out = np.empty((steps, hidden), dtype=np.float32)
        # Forward direction is only needed up to the last polyphone, backward only down to the first.
        last = max(positions) + 1
        first = min(positions) + 1
        self._run(fw_x, self._fw_hh, range(0, last + 1), fw_out)
        self._run(bw_x, self._bw_hh, range(steps - 1, first - 1, -1), bw_out)
        rows = [p + 1 for p in positions]
        features = np.concatenate([fw_out[rows], bw_out[rows]], axis=1)
        logits = np.maximum(features @ self._fc1_w + self._fc1_b, 0.0) @ self._fc2_w + self._fc2_b
        out: list[dict[str, float]] = []
        for row, position in zip(logits, positions):
            candidates = self._candidate_ids.get(text[position])
            if candidates is None or not len(candidates):
                out.append({})
                continue
            values = row[candidates]
            values = np.exp(values - values.max())
            values /= values.sum()
            out.append({self.classes[c]: float(v) for c, v in zip(candidates, values)})
        return out

    def predict(self, text: str, positions: Sequence[int]) -> list[str | None]:
        """The most likely reading at each position (None where the character is no known polyphone)."""
        return [max(s, key=s.__getitem__) if s else None for s in self.scores(text, positions)]

    @staticmethod
    def _run(inputs: np.ndarray, w_hh: np.ndarray, order: range, out: np.ndarray) -> None:
        hidden = w_hh.shape[0]
        h = np.zeros(hidden, dtype=np.float32)
        c = np.zeros(hidden, dtype=np.float32)
        for t in order:
            gates = inputs[t] + h @ w_hh
            ifo = _sigmoid(gates[: 3 * hidden])
            g = np.tanh(gates[3 * hidden :])
            c = ifo[hidden : 2 * hidden] * c + ifo[:hidden] * g
            h = ifo[2 * hidden :] * np.tanh(c)
            out[t] = h


class _nullpath:
    def __init__(self, path: str) -> None:
        self._path = path

    def __enter__(self) -> str:
        return self._path

    def __exit__(self, *exc: object) -> None:
        return None


@lru_cache(maxsize=1)
def default_model() -> PolyphoneModel:
    return PolyphoneModel()
