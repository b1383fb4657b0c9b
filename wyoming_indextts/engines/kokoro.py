"""Kokoro multi-language voices in sherpa-onnx's release layout (``kokoro-multi-lang-v1_1``):
one graph from phoneme tokens, a speaker's style vector and a speed to 24 kHz samples.

``voices.bin`` holds, per speaker, a style vector for every token count: a sentence of n tokens
uses row n of its speaker's table, as Kokoro was trained. Chinese comes from our front end in the
model's misaki-style tokens (initial, final, tone token; erhua ``R``), learned from its
``lexicon-zh.txt``; English words come from its ``lexicon-us-en.txt`` (misaki's dictionary) as
sherpa-onnx reads them, and words missing there from espeak-ng (``en-us``, piper-tts's data) in
the model's IPA tokens. A sentence becomes ``0 tokens… 0``: one run with one style row, as
Kokoro's own pipeline does (sherpa-onnx runs each clause apart); longer ones are cut at commas
to fit the style table.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterator

import numpy as np

from ..frontend import Sentence
from ..onnx import create_session
from .base import EngineError, SynthesisConfig, VoiceInfo, check_cancel
from .model_tokens import WARM_UP, Marks, ToneStyle, chinese_tokens, closing_syllable, english_pieces, latin_word, load_speller
from .sherpa_folder import session_graph

_LOGGER = logging.getLogger(__name__)

ESPEAK_VOICE = "en-us"
# misaki separates words with "/" in the sentences Kokoro v1.1 was trained on; a model whose
# tokens include it gets it at our word boundaries.
WORD_SEPARATOR = "/"
_ESPEAK_LOCK = threading.Lock()


def _espeak_lock() -> threading.Lock:
    """espeak-ng keeps global state: use piper-tts's own lock when it has one, so a Piper voice
    phonemizing at the same time is never interleaved with us."""
    try:
        from piper import voice as piper_voice

        lock = getattr(piper_voice, "_ESPEAK_PHONEMIZER_LOCK", None)
    except ImportError:
        lock = None
    return lock if isinstance(lock, type(_ESPEAK_LOCK)) else _ESPEAK_LOCK


class KokoroEngine:
    """Thread-safe: the session allows concurrent runs; espeak-ng is used under a lock."""

    def __init__(self, info: VoiceInfo, threads: int = 1) -> None:
        self.info = info
        path = info.path / info.files.get("model", "model.onnx")
        self._session = create_session(path, threads)
        self._graph = session_graph(path, self._session)
        if len(self._graph.inputs) != 3:
            raise EngineError(f"Voice {info.name!r}: {path.name} is not a Kokoro export (inputs {', '.join(self._graph.inputs)})")
        self._tokens, lexicon, self._speller = load_speller(info, ToneStyle.TOKEN, word=True)
        self._words = {w: e for w, e in lexicon.items() if latin_word(w)}
        self._marks = Marks.find(self._tokens, WORD_SEPARATOR)
        dims = [int(x) for x in self._graph.metadata["style_dim"].split(",")]
        speakers = self._graph.int("n_speakers", 1)
        voices = info.path / info.files.get("voices", "voices.bin")
        try:
            # Mapped, not read: a release has ~100 speakers (54 MB) and a request uses one row.
            table = np.memmap(voices, dtype="<f4", mode="r")
        except (OSError, ValueError) as err:
            raise EngineError(f"Voice {info.name!r}: cannot read {voices}: {err}") from err
        if table.size != speakers * dims[0] * dims[2]:
            raise EngineError(f"Voice {info.name!r}: {voices.name} holds {table.size} floats, not {speakers}×{dims[0]}×{dims[2]}")
        self._styles = table.reshape(speakers, dims[0], dims[2])
        self._max_tokens = dims[0] - 2  # the table has a row per length; two places are the 0s at the ends
        self._length_scale = float(info.options.get("length_scale", 1.0))
        self._phonemizer: object | None = None

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def _english(self, text: str) -> list[int]:
        """Words from the model's English lexicon (misaki's dictionary, what Kokoro was trained
        on), a space between words, marks as tokens; a word the lexicon lacks is phonemized by
        espeak-ng (sherpa-onnx skips it)."""
        ids: list[int] = []
        previous_word = False
        for piece, is_word in english_pieces(text):
            if not is_word:
                if piece in self._tokens:
                    ids.append(self._tokens[piece])
                previous_word = False
                continue
            if previous_word:
                ids.append(self._tokens[" "])
            entry = self._words.get(piece, "").split()
            # A line with a phoneme the model lacks is dropped, as sherpa-onnx drops it.
            if entry and all(t in self._tokens for t in entry):
                ids.extend(self._tokens[t] for t in entry)
            else:
                ids.extend(self._espeak(piece))
            previous_word = True
        return ids

    def _espeak(self, word: str) -> list[int]:
        with _espeak_lock():
            if self._phonemizer is None:
                try:
                    from piper.phonemize_espeak import EspeakPhonemizer
                except ImportError as err:
                    raise EngineError("English words outside a Kokoro voice's lexicon need piper-tts's espeak-ng") from err
                self._phonemizer = EspeakPhonemizer()
            sentences = self._phonemizer.phonemize(ESPEAK_VOICE, word)  # type: ignore[attr-defined]
        chars = (c for phonemes in sentences for phoneme in phonemes for c in unicodedata.normalize("NFD", phoneme))
        return [self._tokens[c] for c in chars if c in self._tokens and c not in ".,!?;: "]

    def token_ids(self, sentence: Sentence) -> list[list[int]]:
        """The runs for one sentence, each ``[0, tokens…, 0]`` short enough for the style table."""
        last = closing_syllable(sentence)
        ids: list[int] = []
        for span in sentence.spans:
            if span.language == "zh":
                ids.extend(self._tokens[t] for s in chinese_tokens(span.syllables, self._speller, self._marks, last) for t in s.tokens)
            else:
                ids.extend(self._english(span.text))
        if not ids:
            return []
        ending = self._marks.ending(sentence)
        if ending and ids[-1] not in {self._tokens[m] for m in self._marks.all}:  # English may bring its own
            ids.append(self._tokens[ending])
        return [[0, *part, 0] for part in self._fit(ids)]

    def _fit(self, ids: list[int]) -> Iterator[list[int]]:
        """Cut a too-long sequence after its last comma (or anywhere) within the limit."""
        comma = self._tokens.get(self._marks.comma or "")
        while len(ids) > self._max_tokens:
            window = ids[: self._max_tokens]
            cut = max((k + 1 for k, i in enumerate(window) if i == comma), default=self._max_tokens)
            yield ids[:cut]
            ids = ids[cut:]
        if ids:
            yield ids

    def audio(self, ids: list[int], config: SynthesisConfig) -> np.ndarray:
        sid = self.info.speaker_id(config.speaker) if len(self._styles) > 1 else 0
        style = self._styles[sid, len(ids) - 2][None, :]
        speed = max(0.25, min(4.0, config.speed)) / self._length_scale
        graph = self._graph
        (audio,) = self._session.run(None, {
            graph.inputs[0]: np.array([ids], np.int64),
            graph.inputs[1]: style.astype(np.float32),
            graph.inputs[2]: np.array([speed], np.float32),
        })
        return audio.reshape(-1).astype(np.float32, copy=False)

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        for ids in self.token_ids(sentence):
            check_cancel(cancel)
            yield self.audio(ids, config)

    def warm_up(self) -> None:
        for ids in self.token_ids(WARM_UP):
            self.audio(ids, SynthesisConfig())
