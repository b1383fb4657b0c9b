"""Polyphone disambiguation: a small character BiLSTM picks the reading of 行, 长, 了 ... in context.

The weights (``data/polyphone.onnx``, 1.7 MB) are g2pM's (Park & Lee 2020, Apache-2.0; trained
on the CPP train split), nudged toward the Biaobei readings (``tools/train_polyphone.py finetune``;
see ``data/README.md``): embedding → one bidirectional LSTM layer (32 units each way) → ReLU
layer → logits over 876 toned syllables, run by ONNX Runtime and masked here to the readings the
character can have. Only the characters in the model's polyphone list go through it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

_PAD, _UNK, _BOS, _EOS = 0, 1, 2, 3


class PolyphoneModel:
    """Thread-safe after construction (ONNX Runtime sessions are)."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        from ..onnx import packaged_session

        self._session = packaged_session("polyphone.onnx", path, threads)
        meta = self._session.get_modelmeta().custom_metadata_map
        # Ids 0-3 are padding, unknown and g2pM's sentence start and end marks.
        self._char_ids = {c: i for i, c in enumerate(json.loads(meta["chars"])) if i >= 4}
        self.classes: list[str] = [c.replace("u:", "v") for c in json.loads(meta["classes"])]
        class_ids = {c: i for i, c in enumerate(self.classes)}
        # Which characters are polyphones, and the readings each may take.
        self.candidates: dict[str, tuple[str, ...]] = {}
        for entry in json.loads(meta["polyphones"]):
            char, _, readings = entry.partition(":")
            self.candidates[char] = tuple(r for r in readings.split(",") if r in class_ids)
        self._candidate_ids = {char: [class_ids[r] for r in readings] for char, readings in self.candidates.items()}

    def is_polyphone(self, char: str) -> bool:
        return char in self._candidate_ids

    def scores(self, text: str, positions: Sequence[int]) -> list[dict[str, float]]:
        """For each position, the softmax probability of each candidate reading."""
        if not positions:
            return []
        ids = np.array([_BOS] + [self._char_ids.get(c, _UNK) for c in text] + [_EOS], dtype=np.int64)
        rows = np.array([p + 1 for p in positions], dtype=np.int64)
        logits = self._session.run(None, {"ids": ids, "rows": rows})[0]
        out: list[dict[str, float]] = []
        # A softmax over two to six candidates: plain floats, not numpy calls on tiny arrays.
        for row, position in zip(logits, positions):
            candidates = self._candidate_ids.get(text[position])
            if not candidates:
                out.append({})
                continue
            values = row[candidates].tolist()
            top = max(values)
            exps = [math.exp(v - top) for v in values]
            total = sum(exps)
            out.append({self.classes[c]: e / total for c, e in zip(candidates, exps)})
        return out

    def predict(self, text: str, positions: Sequence[int]) -> list[str | None]:
        """The most likely reading at each position (None where the character is no known polyphone)."""
        return [max(s, key=s.__getitem__) if s else None for s in self.scores(text, positions)]


@lru_cache(maxsize=1)
def default_model() -> PolyphoneModel:
    return PolyphoneModel()
