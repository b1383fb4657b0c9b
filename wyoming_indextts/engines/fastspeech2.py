"""FastSpeech2 acoustic model + multi-band MelGAN vocoder (TensorFlowTTS exports), e.g. zh_CN-baker.

Phonemes → mel → waveform. The acoustic model was trained on Biaobei symbols:
``sil``, initials (``^`` for none), toned finals such as ``ang2``, and prosody
marks ``#0``–``#3`` between syllables.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..frontend import Sentence, Syllable
from ..onnx import create_session
from .base import EngineError, SynthesisConfig, VoiceInfo, check_cancel, windows

_LOGGER = logging.getLogger(__name__)

_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z", "c", "s")
_Y_FINALS = {
    "yi": "i", "ya": "ia", "yan": "ian", "yang": "iang", "yao": "iao", "ye": "ie", "yin": "in",
    "ying": "ing", "yong": "iong", "you": "iou", "yo": "iou", "yu": "v", "yuan": "van", "yue": "ve", "yun": "vn",
}
_W_FINALS = {
    "wu": "u", "wa": "ua", "wai": "uai", "wan": "uan", "wang": "uang", "wei": "uei", "wen": "uen",
    "weng": "ueng", "wong": "ueng", "wo": "uo",
}
# Syllabic nasals (嗯, 呣) have no final of their own in the Biaobei inventory.
_NASALS = {"n": ("^", "en"), "ng": ("^", "en"), "m": ("m", "u"), "hm": ("h", "en"), "hng": ("h", "eng")}


def split_pinyin(syllable: str) -> tuple[str, str]:
    """Toneless pinyin → (initial, final) in Biaobei spelling: ``zhi`` → (zh, iii), ``yu`` → (^, v)."""
    s = syllable.lower().replace("ü", "v").replace("ê", "e")
    if s in _NASALS:
        return _NASALS[s]
    if s in _Y_FINALS:
        return "^", _Y_FINALS[s]
    if s in _W_FINALS:
        return "^", _W_FINALS[s]
    initial = next((i for i in _INITIALS if s.startswith(i) and len(s) > len(i)), "^")
    final = s[len(initial):] if initial != "^" else s
    if initial in ("j", "q", "x") and final.startswith("u"):
        final = "v" + final[1:]
    if final == "i" and initial in ("zh", "ch", "sh", "r"):
        final = "iii"
    elif final == "i" and initial in ("z", "c", "s"):
        final = "ii"
    final = {"iu": "iou", "ui": "uei", "un": "uen", "ue": "ve"}.get(final, final)
    return initial, final


def syllable_symbols(pinyin: str) -> list[str]:
    """``hang2`` → [h, ang2]; erhua ``huar4`` → [h, ua4, ^?]: the Biaobei way, a trailing ``er5``."""
    tone = pinyin[-1] if pinyin[-1:].isdigit() else "5"
    base = pinyin[:-1] if pinyin[-1:].isdigit() else pinyin
    if base.endswith("r") and base not in ("er",) and len(base) > 1:
        initial, final = split_pinyin(base[:-1])
        return [initial, final + tone, "er5"]
    initial, final = split_pinyin(base)
    return [initial, final + tone]


def sentence_layout(syllables: Sequence[Syllable], known: set[str] | dict[str, int]) -> list[tuple[str, int]]:
    """The Biaobei training layout — sil, syllables joined by #0/#1/#2/#3, sil — with the
    index of the syllable each symbol belongs to (-1 for silences and marks)."""
    layout: list[tuple[str, int]] = [("sil", -1)]
    for index, syllable in enumerate(syllables):
        parts = syllable_symbols(syllable.pinyin)
        if not all(p in known for p in parts):
            _LOGGER.debug("No symbols for %r (%s); skipped", syllable.char, syllable.pinyin)
            continue
        if layout[-1][0] != "sil" and not layout[-1][0].startswith("#"):
            layout.append(("#0", -1))
        layout.extend((part, index) for part in parts)
        if 1 <= syllable.boundary <= 3:
            layout.append((f"#{syllable.boundary}", -1))
    while layout[-1][0].startswith("#"):
        layout.pop()
    layout.append(("sil", -1))
    return layout


def sentence_symbols(syllables: Sequence[Syllable], known: set[str] | dict[str, int]) -> list[str]:
    return [symbol for symbol, _ in sentence_layout(syllables, known)]


@dataclass(frozen=True)
class ProsodyControls:
    """Per-symbol adjustments to the acoustic model's own predictions."""

    duration: np.ndarray
    """Multiplies each symbol's predicted frames."""
    f0_offset: np.ndarray
    """Added to the z-normalized pitch: +1 is about one standard deviation of the speaker's pitch."""
    energy_offset: np.ndarray


# The end of a yes/no question rises over its last syllables and is drawn out a little;
# a stressed word is higher, louder and slightly longer. Values chosen by ear and kept modest:
# the model was never trained on out-of-range pitch.
QUESTION_RISE = (0.3, 0.6, 1.0)
QUESTION_FINAL_LENGTHENING = 1.15
EMPHASIS_F0 = 0.5
EMPHASIS_ENERGY = 0.5
EMPHASIS_LENGTHENING = 1.1


def prosody_controls(sentence: Sentence, owners: Sequence[int], speed: float) -> ProsodyControls:
    count = len(owners) + 1  # + eos
    duration = np.full(count, 1.0 / max(0.25, min(4.0, speed)), dtype=np.float32)
    f0 = np.zeros(count, dtype=np.float32)
    energy = np.zeros(count, dtype=np.float32)
    syllables = sentence.syllables
    owner_array = np.asarray(list(owners) + [-1])
    stressed = {i for i, s in enumerate(syllables) if s.index in set(sentence.emphasis)}
    for index in stressed:
        mask = owner_array == index
        f0[mask] += EMPHASIS_F0
        energy[mask] += EMPHASIS_ENERGY
        duration[mask] *= EMPHASIS_LENGTHENING
    if sentence.is_question and syllables:
        spoken = sorted({o for o in owners if o >= 0})
        for rise, index in zip(reversed(QUESTION_RISE), reversed(spoken)):
            f0[owner_array == index] += rise
        if spoken:
            duration[owner_array == spoken[-1]] *= QUESTION_FINAL_LENGTHENING
    return ProsodyControls(duration, f0, energy)


# Measured on zh_CN-baker's MB-MelGAN by perturbing single mel frames: a frame changes
# output at most 18 frames before and after it, so vocoding a window with 20 frames of
# context on each side and trimming it gives exactly the one-shot samples.
VOCODER_CONTEXT_FRAMES = 20
# Its reflection pads need at least this many input frames.
VOCODER_MIN_FRAMES = 10
FIRST_WINDOW_FRAMES = 16
MAX_WINDOW_FRAMES = 256


class FastSpeech2Engine:
    """Thread-safe: onnxruntime sessions may be run from several threads at once."""

    def __init__(self, info: VoiceInfo, threads: int = 1) -> None:
        self.info = info
        files = info.files
        try:
            mapper = json.loads((info.path / files.get("symbols", "symbols.json")).read_text(encoding="utf-8"))
            self._symbol_to_id: dict[str, int] = mapper["symbol_to_id"]
        except (OSError, KeyError, ValueError) as err:
            raise EngineError(f"Cannot read the symbol table of voice {info.name!r}: {err}") from err
        self._acoustic = create_session(info.path / files.get("acoustic", "acoustic.onnx"), threads)
        self._vocoder = create_session(info.path / files.get("vocoder", "vocoder.onnx"), threads)
        self._acoustic_inputs = {i.name for i in self._acoustic.get_inputs()}
        self._mel_output = str(info.options.get("mel_output", self._acoustic.get_outputs()[1].name))
        self._vocoder_input = self._vocoder.get_inputs()[0].name
        self._hop = int(info.options.get("hop_length", 300))
        self._context = int(info.options.get("vocoder_context_frames", VOCODER_CONTEXT_FRAMES))

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def symbol_ids(self, sentence: Sentence) -> list[int]:
        return self._layout(sentence)[0]

    def _layout(self, sentence: Sentence) -> tuple[list[int], list[int]]:
        layout = sentence_layout(sentence.syllables, self._symbol_to_id)
        ids = [self._symbol_to_id[s] for s, _ in layout] + [self._symbol_to_id["eos"]]
        return ids, [owner for _, owner in layout]

    def mel(self, ids: Sequence[int], config: SynthesisConfig, controls: ProsodyControls | None = None) -> np.ndarray:
        """Run the acoustic model: symbol ids → mel [1, frames, 80]."""
        speed = 1.0 / max(0.25, min(4.0, config.speed))
        one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
        feeds: dict[str, np.ndarray] = {
            "input_ids": np.asarray([ids], dtype=np.int32),
            "speaker_ids": np.asarray([self.info.speaker_id(config.speaker)], dtype=np.int32),
            # Durations are multiplied by this ratio, so faster speech is a smaller ratio.
            "speed_ratios": controls.duration if controls is not None else one * speed,
            "f0_ratios": one,
            "energy_ratios": one,
            "f0_offsets": controls.f0_offset if controls is not None else zero,
            "energy_offsets": controls.energy_offset if controls is not None else zero,
        }
        if controls is not None and "f0_offsets" not in self._acoustic_inputs:
            # An older export without per-symbol controls: keep the sentence-level rate only.
            feeds["speed_ratios"] = one * speed
        feeds = {k: v for k, v in feeds.items() if k in self._acoustic_inputs}
        (mel,) = self._acoustic.run([self._mel_output], feeds)
        return mel

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        """Mel [1, frames, 80] → samples, in one run."""
        frames = mel.shape[1]
        if frames < VOCODER_MIN_FRAMES:
            # Repeat the edge frames (silence at sentence ends) and trim them off again.
            pad = VOCODER_MIN_FRAMES - frames
            mel = np.pad(mel, ((0, 0), (0, pad), (0, 0)), mode="edge")
        (audio,) = self._vocoder.run(None, {self._vocoder_input: mel.astype(np.float32, copy=False)})
        return audio.reshape(-1)[: frames * self._hop].astype(np.float32, copy=False)

    def vocode_windows(self, mel: np.ndarray, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        """Mel → samples in growing windows, so the first audio leaves after a few frames.

        A small first window gets audio out early; after it the vocoder is far ahead of
        playback (0.2 s of audio in hand, ~0.3 ms of compute per frame), so the rest goes in
        windows of MAX_WINDOW_FRAMES, each paying the context overhead only once. Every window
        is vocoded with enough context that the joined audio equals the one-shot output.
        """
        for w in windows(mel.shape[1], self._context, FIRST_WINDOW_FRAMES, MAX_WINDOW_FRAMES):
            audio = self.vocode(mel[:, w.left : w.right])
            yield audio[(w.start - w.left) * self._hop : (w.end - w.left) * self._hop]
            if cancel is not None:
                check_cancel(cancel)

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        if not sentence.syllables:
            return
        ids, owners = self._layout(sentence)
        if len(ids) <= 3:  # sil, sil, eos: nothing this voice can say
            return
        check_cancel(cancel)
        mel = self.mel(ids, config, prosody_controls(sentence, owners, config.speed))
        check_cancel(cancel)
        yield from self.vocode_windows(mel, cancel)

    def warm_up(self) -> None:
        ids = [self._symbol_to_id[s] for s in ("sil", "n", "i3", "#0", "h", "ao3", "sil", "eos")]
        self.vocode(self.mel(ids, SynthesisConfig()))
