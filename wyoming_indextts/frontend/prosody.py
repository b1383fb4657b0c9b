"""Prosodic boundaries (#1–#4) and sentence type.

First version: rules over word boundaries and punctuation. The interface —
readings in, one boundary level per reading out — is what a trained predictor
replaces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .g2p_zh import Reading

_CLAUSE = set("，,、；;：:—")
_QUESTION_PARTICLES = ("吗", "呢", "么", "吧")
_QUESTION_WORDS = re.compile(r"(什么|怎么|为什么|哪|谁|几|多少|是不是|有没有|能不能|要不要|对不对|好不好)")


def predict_boundaries(text: str, readings: Sequence[Reading]) -> list[int]:
    """One level per reading: the boundary that follows it (0 inside a prosodic word)."""
    levels = [0] * len(readings)
    if not readings:
        return levels
    word_length = 0
    for i, reading in enumerate(readings):
        word_length += 1
        is_last = i == len(readings) - 1
        if is_last:
            levels[i] = 4
            break
        between = text[reading.index + 1 : readings[i + 1].index]
        if any(c in _CLAUSE for c in between):
            levels[i] = 3
            word_length = 0
        elif readings[i + 1].word_start and word_length >= 2:
            # Single-syllable words lean on their neighbour, as in natural reading.
            levels[i] = 1
            word_length = 0
    return levels


def is_question(text: str) -> bool:
    stripped = text.rstrip(" ”’\"')）」』")
    if stripped.endswith(("？", "?")):
        return True
    if stripped.endswith(("。", "！", "!", ".")):
        return False
    core = stripped.rstrip("…~～")
    return core.endswith(_QUESTION_PARTICLES) and bool(core)
