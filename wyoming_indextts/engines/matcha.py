"""Matcha-TTS voices in sherpa-onnx's release layout (``matcha-icefall-zh-baker``): an acoustic
model (tokens → mel, flow matching with a fixed number of ODE steps) and a separate vocoder
(Vocos: mel → STFT magnitude and phase, then an inverse STFT; or HiFi-GAN: mel → samples).

Fed by our front end: each syllable as spoken (sandhi, neutral tones, erhua) in the model's own
tokens (learned from its lexicon, :mod:`.model_tokens`), a comma at each #3 boundary and the
sentence's own final mark (``?`` for questions), then blanks between tokens as the model was
trained (``add_blank``). The acoustic model runs once per sentence; the vocoder runs in windows
with enough context that the joined audio equals one run's, so audio starts after the first
window rather than after the whole sentence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..frontend import Sentence
from ..onnx import create_session
from .base import EngineError, SynthesisConfig, VoiceInfo, check_cancel, windows
from .model_tokens import WARM_UP, Marks, ToneStyle, chinese_tokens, closing_syllable, intersperse, load_speller
from .sherpa_folder import VOCODER_TYPES, Graph, session_graph

if TYPE_CHECKING:
    import onnxruntime as ort

_LOGGER = logging.getLogger(__name__)

FIRST_WINDOW_FRAMES = 16
MAX_WINDOW_FRAMES = 128
# A vocoder whose output reaches further than this many frames (measured at load) is run on
# the whole sentence at once: windows would cost more context than they save.
MAX_CONTEXT_FRAMES = 48
# Sherpa-onnx's defaults for Matcha (OfflineTtsMatchaModelConfig).
DEFAULT_NOISE_SCALE = 1.0
DEFAULT_LENGTH_SCALE = 1.0


class InverseStft:
    """Overlap-add inverse STFT, fed a few frames at a time; gives the samples that no later
    frame can change, so the joined output equals one inverse STFT of all frames (centred,
    Hann window, divided by the summed squared window, as sherpa-onnx's Vocos path does)."""

    def __init__(self, n_fft: int, hop: int) -> None:
        self.n_fft, self.hop = n_fft, hop
        # The periodic Hann window (torch.hann_window's default, kaldi-native-fbank's "hann").
        self.window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
        self._signal = np.zeros(0)
        self._weight = np.zeros(0)
        self._start = 0  # padded-signal index of _signal[0]
        self._frames = 0
        self._emitted = n_fft // 2  # centre padding: the first n_fft/2 samples are never output

    def push(self, real: np.ndarray, imag: np.ndarray) -> np.ndarray:
        """``real``/``imag``: [frames, n_fft/2 + 1]; returns the samples now final."""
        frames = np.fft.irfft(real.astype(np.float64) + 1j * imag.astype(np.float64), n=self.n_fft, axis=1) * self.window
        end = (self._frames + len(frames) - 1) * self.hop + self.n_fft - self._start
        if end > len(self._signal):
            grow = end - len(self._signal)
            self._signal = np.concatenate([self._signal, np.zeros(grow)])
            self._weight = np.concatenate([self._weight, np.zeros(grow)])
        squared = self.window**2
        for k, frame in enumerate(frames):
            at = (self._frames + k) * self.hop - self._start
            self._signal[at : at + self.n_fft] += frame
            self._weight[at : at + self.n_fft] += squared
        self._frames += len(frames)
        return self._take(self._frames * self.hop)

    def finish(self) -> np.ndarray:
        """The rest, up to the end of the centred output ((frames - 1) × hop samples)."""
        return self._take((self._frames - 1) * self.hop + self.n_fft // 2)

    def _take(self, until: int) -> np.ndarray:
        """Padded samples [emitted, until), normalized, and drop what no frame will touch again."""
        if until <= self._emitted:
            return np.zeros(0, np.float32)
        a, b = self._emitted - self._start, until - self._start
        weight = self._weight[a:b]
        out = np.divide(self._signal[a:b], weight, out=np.zeros(b - a), where=weight != 0)
        self._emitted = until
        keep = self._frames * self.hop - self._start  # the next frame starts here
        self._signal, self._weight, self._start = self._signal[keep:], self._weight[keep:], self._start + keep
        return out.astype(np.float32)


@dataclass(frozen=True)
class _VocosSettings:
    n_fft: int
    hop: int


class Vocoder:
    """A sherpa-onnx vocoder release (Vocos or HiFi-GAN): mel [1, mels, frames] → samples."""

    def __init__(self, graph: Graph, session: "ort.InferenceSession") -> None:
        self.graph = graph
        self._session = session
        self.kind = VOCODER_TYPES.get(graph.metadata.get("model_type", "").lower(), "")
        if not self.kind:
            raise EngineError(f"{graph.path.name}: metadata model_type must be vocos or hifigan")
        self._input = graph.inputs[0]
        self._vocos = _VocosSettings(graph.int("n_fft", 1024), graph.int("hop_length", 256)) if self.kind == "vocos" else None
        self.context: int | None = None
        """Frames of context a window needs on each side (measured at warm-up); None: no windows."""

    def spectra(self, mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vocos: mel → (real, imag), each [frames, n_fft/2 + 1]."""
        magnitude, cos, sin = self._session.run(None, {self._input: mel})
        return (magnitude * cos)[0].T, (magnitude * sin)[0].T

    def samples(self, mel: np.ndarray) -> np.ndarray:
        """HiFi-GAN: mel → samples."""
        (audio,) = self._session.run(None, {self._input: mel})[:1]
        return audio.reshape(-1).astype(np.float32, copy=False)

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        """The whole mel in one run."""
        if self._vocos is None:
            return self.samples(mel)
        istft = InverseStft(self._vocos.n_fft, self._vocos.hop)
        real, imag = self.spectra(mel)
        return np.concatenate([istft.push(real, imag), istft.finish()])

    def windows(self, mel: np.ndarray, cancel: threading.Event) -> Iterator[np.ndarray]:
        """The same samples as :meth:`vocode`, a window at a time (:func:`.base.windows`), each
        with :attr:`context` frames either side."""
        frames = mel.shape[2]
        if self.context is None:
            yield self.vocode(mel)
            return
        istft = InverseStft(self._vocos.n_fft, self._vocos.hop) if self._vocos else None
        for w in windows(frames, self.context, FIRST_WINDOW_FRAMES, MAX_WINDOW_FRAMES):
            window = np.ascontiguousarray(mel[:, :, w.left : w.right])
            if istft is not None:
                real, imag = self.spectra(window)
                audio = istft.push(real[w.start - w.left : w.end - w.left], imag[w.start - w.left : w.end - w.left])
                if w.end == frames:
                    audio = np.concatenate([audio, istft.finish()])
            else:
                samples = self.samples(window)
                hop = len(samples) // (w.right - w.left)
                audio = samples[(w.start - w.left) * hop : (w.end - w.left) * hop]
            yield audio
            check_cancel(cancel)

    def measure_context(self, mels: int) -> None:
        """How far one mel frame reaches in the output, found by changing one frame of a random
        mel: windows need that much context for their output to equal one run's."""
        frames, middle = 128, 64
        rng = np.random.default_rng(0)
        mel = rng.standard_normal((1, mels, frames)).astype(np.float32)
        changed = mel.copy()
        changed[:, :, middle] += 3.0
        if self._vocos is not None:
            a, b = self.spectra(mel)[0], self.spectra(changed)[0]
            touched = np.flatnonzero(np.any(a != b, axis=1))
        else:
            a, b = self.samples(mel), self.samples(changed)
            hop = len(a) // frames
            touched = np.unique(np.flatnonzero(a != b) // max(1, hop))
        reach = int(np.max(np.abs(touched - middle))) if len(touched) else 0
        self.context = reach + 1 if reach + 1 <= MAX_CONTEXT_FRAMES else None
        _LOGGER.debug("Vocoder %s: one frame reaches %d frames; windows %s", self.graph.path.name, reach,
                      f"with {self.context} frames of context" if self.context else "off")


class MatchaEngine:
    """Thread-safe: onnxruntime sessions may be run from several threads at once."""

    def __init__(self, info: VoiceInfo, threads: int = 1) -> None:
        self.info = info
        model_path = info.path / info.files.get("model", "model-steps-3.onnx")
        self._acoustic = create_session(model_path, threads)
        self._graph = session_graph(model_path, self._acoustic)
        self._tokens, _, self._speller = load_speller(info, ToneStyle.SUFFIX)
        self._marks = Marks.find(self._tokens)
        meta = self._graph.metadata
        zh_en = meta.get("voice") == "zh en-us"  # sherpa-onnx: these were trained without blanks
        self._add_blank = not zh_en and self._graph.int("add_blank", 1) == 1
        self._pad = self._graph.int("pad_id", 0)
        self._speakers = self._graph.int("n_speakers", 1)
        self._noise_scale = float(info.options.get("noise_scale", DEFAULT_NOISE_SCALE))
        self._length_scale = float(info.options.get("length_scale", DEFAULT_LENGTH_SCALE))
        self._vocoder: Vocoder | None = None
        if self._graph.outputs[0] != "audio_output":
            vocoder_file = info.files.get("vocoder")
            if not vocoder_file:
                raise EngineError(f"Voice {info.name!r} needs a vocoder (files.vocoder in voice.json)")
            path = info.path / vocoder_file
            session = create_session(path, threads)
            self._vocoder = Vocoder(session_graph(path, session), session)

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def token_ids(self, sentence: Sentence) -> list[int]:
        """The acoustic model's input for one sentence (blanks included)."""
        last = closing_syllable(sentence)
        tokens: list[str] = []
        for span in sentence.spans:
            if span.language == "zh":
                tokens.extend(t for spelled in chinese_tokens(span.syllables, self._speller, self._marks, last) for t in spelled.tokens)
        if not tokens:
            return []
        ending = self._marks.ending(sentence)
        if ending:
            tokens.append(ending)
        ids = [self._tokens[t] for t in tokens]
        return intersperse(ids, self._pad) if self._add_blank else ids

    def mel(self, ids: list[int], config: SynthesisConfig) -> np.ndarray:
        """Token ids → mel [1, mels, frames] (or samples, for an export with its vocoder inside)."""
        graph = self._graph
        speed = max(0.25, min(4.0, config.speed))
        length_scale = np.array([self._length_scale / speed], np.float32)
        noise_scale = np.array([self._noise_scale], np.float32)
        # Fed by position, as sherpa-onnx does: icefall and Matcha-TTS exports name them differently.
        feeds: dict[str, np.ndarray] = {
            graph.inputs[0]: np.array([ids], np.int64),
            graph.inputs[1]: np.array([len(ids)], np.int64),
        }
        if graph.inputs[2] == "scales":
            feeds["scales"] = np.concatenate([noise_scale, length_scale])
        else:
            feeds[graph.inputs[2]] = noise_scale
            feeds[graph.inputs[3]] = length_scale
        if len(graph.inputs) == 5 and graph.inputs[4] == "sid":
            sid = self.info.speaker_id(config.speaker) if self._speakers > 1 else 0
            feeds["sid"] = np.array([sid], np.int64)
        (mel,) = self._acoustic.run(None, feeds)
        return mel

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        ids = self.token_ids(sentence)
        if ids:
            check_cancel(cancel)
            yield from self.speak(ids, config, cancel)

    def speak(self, ids: list[int], config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        """Token ids → audio chunks: the acoustic model once, then the vocoder window by window."""
        mel = self.mel(ids, config)
        check_cancel(cancel)
        if self._vocoder is None:
            yield mel.reshape(-1).astype(np.float32, copy=False)
            return
        yield from self._vocoder.windows(mel.astype(np.float32, copy=False), cancel)

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        """One vocoder run over the whole mel (what the windows must add up to)."""
        if self._vocoder is None:
            return mel.reshape(-1)
        return self._vocoder.vocode(mel)

    def warm_up(self) -> None:
        mel = self.mel(self.token_ids(WARM_UP), SynthesisConfig())
        if self._vocoder is not None:
            self._vocoder.measure_context(mel.shape[1])
            self._vocoder.vocode(mel)
