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
        # Both directions advance in one loop (forward at step t, backward at steps-1-t): one
        # matrix product per step with a block-diagonal recurrent matrix, gates laid out
        # [i_fw i_bw | f_fw f_bw | o_fw o_bw | g_fw g_bw]. Input projections for every vocabulary
        # entry and direction, gates (i, f, o, g): one lookup per step. The sigmoid gates' weights
        # are halved (sigmoid(x) = 0.5 tanh(x / 2) + 0.5), so one tanh serves all gates.
        size = weights["fw_w_hh"].shape[1]
        order = np.r_[0 : 2 * size, 3 * size : 4 * size, 2 * size : 3 * size]  # PyTorch's (i, f, g, o)
        scale = np.concatenate([np.full(3 * size, 0.5), np.ones(size)]).astype(np.float32)
        self._inputs: list[np.ndarray] = []
        self._w_hh = np.zeros((2 * size, 8 * size), dtype=np.float32)
        for d, direction in enumerate(("fw", "bw")):
            projected = embedding @ weights[f"{direction}_w_ih"].T + weights[f"{direction}_b_ih"] + weights[f"{direction}_b_hh"]
            self._inputs.append(np.ascontiguousarray(projected[:, order] * scale, dtype=np.float32))
            recurrent = weights[f"{direction}_w_hh"].T[:, order] * scale  # (size, 4 size)
            for gate in range(4):
                column = gate * 2 * size + d * size
                self._w_hh[d * size : (d + 1) * size, column : column + size] = recurrent[:, gate * size : (gate + 1) * size]
        self._hidden = size
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

    def is_polyphone(self, char: str) -> bool:
        return char in self._candidate_ids

    def scores(self, text: str, positions: Sequence[int]) -> list[dict[str, float]]:
        """For each position, the softmax probability of each candidate reading."""
        if not positions:
            return []
        ids = [_BOS] + [self._char_ids.get(c, _UNK) for c in text] + [_EOS]
        steps = len(ids)
        hidden = self._hidden
        # The forward direction is only needed up to the last polyphone, the backward one only
        # down to the first: the loop runs as long as the longer of the two needs.
        last = max(positions) + 1
        first = min(positions) + 1
        length = max(last, steps - 1 - first) + 1
        inputs = np.empty((length, 4, 2, hidden), dtype=np.float32)
        inputs[:, :, 0] = self._inputs[0][ids[:length]].reshape(length, 4, hidden)
        inputs[:, :, 1] = self._inputs[1][ids[::-1][:length]].reshape(length, 4, hidden)
        states = self._run(inputs.reshape(length, 8 * hidden), self._w_hh, hidden)
        fw_out = states[:, :hidden]
        bw_out = np.zeros((steps, hidden), dtype=np.float32)
        bw_out[steps - length :] = states[::-1, hidden:]
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
    def _run(inputs: np.ndarray, w_hh: np.ndarray, hidden: int) -> np.ndarray:
        """The fused LSTM over ``inputs`` (steps × 8 hidden): per step [forward h, backward h]."""
        two = 2 * hidden
        out = np.empty((len(inputs), two), dtype=np.float32)
        h = np.zeros(two, dtype=np.float32)
        c = np.zeros(two, dtype=np.float32)
        gates = np.empty(4 * two, dtype=np.float32)
        for t in range(len(inputs)):
            np.matmul(h, w_hh, out=gates)
            gates += inputs[t]
            np.tanh(gates, out=gates)
            sig = gates[: 3 * two]
            sig *= 0.5
            sig += 0.5
            c *= gates[two : 2 * two]
            c += gates[:two] * gates[3 * two :]
            h = gates[2 * two : 3 * two] * np.tanh(c)
            out[t] = h
        return out


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
