"""MeloTTS VITS voices in sherpa-onnx's release layout (``vits-melo-tts-zh_en``): one graph from
phones and their tones to samples, Chinese and English in one voice.

Chinese comes from our front end (each syllable as spoken, in the model's phones with the
model's tone ids, learned from its lexicon); English words are looked up in the model's own
(CMU-derived) lexicon, letter by letter when a word is not there, punctuation kept, as
sherpa-onnx reads them. A comma goes in at #3 boundaries, the sentence's own final mark at the
end; a blank goes between all tokens as the model was trained (sherpa-onnx adds them clause by
clause, so it doubles the blank after each comma).

Piper's VITS voices are the same architecture with another front end: see :mod:`.piper`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import numpy as np

from ..frontend import Sentence
from ..onnx import create_session
from .base import EngineError, SynthesisConfig, VoiceInfo, check_cancel
from .model_tokens import (
    WARM_UP, Marks, Spelling, ToneStyle, chinese_tokens, closing_syllable, english_pieces, intersperse, latin_word, load_speller,
)
from .sherpa_folder import session_graph

_LOGGER = logging.getLogger(__name__)

# Sherpa-onnx's defaults for VITS (OfflineTtsVitsModelConfig).
DEFAULT_NOISE_SCALE = 0.667
DEFAULT_NOISE_SCALE_W = 0.8
DEFAULT_LENGTH_SCALE = 1.0


class VitsEngine:
    """Thread-safe: onnxruntime sessions may be run from several threads at once."""

    def __init__(self, info: VoiceInfo, threads: int = 1) -> None:
        self.info = info
        path = info.path / info.files.get("model", "model.onnx")
        self._session = create_session(path, threads)
        self._graph = session_graph(path, self._session)
        if len(self._graph.inputs) != 7 or self._graph.inputs[2] != "tones":
            raise EngineError(f"Voice {info.name!r}: {path.name} is not a MeloTTS export (inputs {', '.join(self._graph.inputs)})")
        self._tokens, lexicon, self._speller = load_speller(info, ToneStyle.PARALLEL, word=True)
        self._words = {w: e for w, e in lexicon.items() if latin_word(w)}
        self._marks = Marks.find(self._tokens)
        self._add_blank = self._graph.int("add_blank", 0) == 1
        self._speaker_count = self._graph.int("n_speakers", 1)
        # MeloTTS exports one speaker and name its id in the metadata.
        self._fixed_speaker = self._graph.int("speaker_id", 0)
        self._noise_scale = float(info.options.get("noise_scale", DEFAULT_NOISE_SCALE))
        self._noise_scale_w = float(info.options.get("noise_scale_w", DEFAULT_NOISE_SCALE_W))
        self._length_scale = float(info.options.get("length_scale", DEFAULT_LENGTH_SCALE))

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def _english(self, text: str) -> Iterator[Spelling]:
        """Words from the model's lexicon (letter by letter when a word is not there), marks as
        tokens, nothing between words: MeloTTS's English was trained so."""
        for piece, is_word in english_pieces(text):
            if not is_word:
                if piece in self._tokens:
                    yield Spelling((piece,), (0,))
                continue
            entry = self._word(piece)
            if entry is None:  # spelled out: the lexicon has every letter
                parts = [p for p in map(self._word, piece) if p is not None]
                entry = Spelling(tuple(t for p in parts for t in p.tokens), tuple(t for p in parts for t in p.tones))
            yield entry

    def _word(self, word: str) -> Spelling | None:
        """A word's lexicon line, or None (also for a line with a phone the model lacks: sherpa-onnx
        drops those lines)."""
        line = self._words.get(word)
        if line is None:
            return None
        spelled = _phones_and_tones(line.split())
        return spelled if spelled.tokens and all(t in self._tokens for t in spelled.tokens) else None

    def token_ids(self, sentence: Sentence) -> tuple[list[int], list[int]]:
        """(phone ids, tone ids), blanks included."""
        last = closing_syllable(sentence)
        spelled: list[Spelling] = []
        for span in sentence.spans:
            if span.language == "zh":
                spelled.extend(chinese_tokens(span.syllables, self._speller, self._marks, last))
            else:
                spelled.extend(self._english(span.text))
        if not any(s.tokens for s in spelled):
            return [], []
        ending = self._marks.ending(sentence)
        final = next(s.tokens[-1] for s in reversed(spelled) if s.tokens)
        if ending and final not in self._marks.all:  # English may bring its own
            spelled.append(Spelling((ending,), (0,)))
        ids = [self._tokens[t] for s in spelled for t in s.tokens]
        tones = [tone for s in spelled for tone in s.tones]
        if self._add_blank:
            return intersperse(ids, 0), intersperse(tones, 0)
        return ids, tones

    def audio(self, ids: list[int], tones: list[int], config: SynthesisConfig) -> np.ndarray:
        speed = max(0.25, min(4.0, config.speed))
        sid = self.info.speaker_id(config.speaker) if self._speaker_count > 1 else self._fixed_speaker
        values = (
            np.array([ids], np.int64),
            np.array([len(ids)], np.int64),
            np.array([tones], np.int64),
            np.array([sid], np.int64),
            np.array([self._noise_scale], np.float32),
            np.array([self._length_scale / speed], np.float32),
            np.array([self._noise_scale_w], np.float32),
        )
        # By position, as sherpa-onnx feeds it.
        (audio,) = self._session.run(None, dict(zip(self._graph.inputs, values)))
        return audio.reshape(-1).astype(np.float32, copy=False)

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        ids, tones = self.token_ids(sentence)
        if not ids:
            return
        check_cancel(cancel)
        yield self.audio(ids, tones, config)

    def warm_up(self) -> None:
        self.audio(*self.token_ids(WARM_UP), SynthesisConfig())


def _phones_and_tones(entry: list[str]) -> Spelling:
    """A MeloTTS lexicon line's tokens: the phones, then one tone id per phone."""
    half = len(entry) // 2
    try:
        return Spelling(tuple(entry[:half]), tuple(int(t) for t in entry[half:]))
    except ValueError:
        return Spelling(())
