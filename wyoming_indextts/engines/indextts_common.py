"""What IndexTTS-2 and IndexTTS-2.5 share: reference-clip features, text clean-up, sampling, flow.

Every feature is computed the way the upstream PyTorch code computes it, with the library made
for it where one exists (the ``indextts`` extra):

- the reference clip is read at 22,050 Hz (soxr, as ``librosa.load`` does) and the 16 kHz copy
  is resampled from that with the windowed-sinc filter of ``torchaudio.functional.resample``;
- CAMPPlus gets Kaldi filterbanks (``kaldi-native-fbank``: povey window, 25/10 ms, log floor
  float32 eps), mean-normalised over the clip;
- w2v-BERT gets ``transformers``' ``SeamlessM4TFeatureExtractor`` with the w2v-bert-2.0
  preprocessor settings (no torch involved);
- the flow-matching model's prompt mel is log(Slaney-normalised mel of sqrt(|STFT|^2 + 1e-9)),
  n_fft 1024, hop 256, 80 bins, 0 Hz to Nyquist, reflect-padded and not centred.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ..frontend import Sentence
from ..frontend.dictionaries import default_dictionaries
from .base import EngineError, check_cancel

SAMPLE_RATE = 22050
SEMANTIC_RATE = 16000
HOP = 256
MEL_FFT = 1024
MEL_BINS = 80
MAX_REFERENCE_SECONDS = 15
MIN_REFERENCE_SECONDS = 0.5
FRAMES_PER_CODE = 1.72  # mel frames per semantic code (upstream's target length factor)
START_CODE = 8192
STOP_CODE = 8193
START_TEXT = 0
STOP_TEXT = 1

EXTRA_HINT = "IndexTTS voices need the optional extra: pip install 'wyoming-indextts[indextts]'"

# w2v-bert-2.0's preprocessor_config.json, for exports that do not ship it. padding_value=1 and
# the stride-2 attention mask matter: a clip with an odd number of frames ends in a half-padded,
# masked-out frame.
W2V_BERT_PREPROCESSOR: dict[str, Any] = {
    "feature_size": 80, "num_mel_bins": 80, "sampling_rate": SEMANTIC_RATE, "stride": 2,
    "padding_value": 1.0, "padding_side": "right", "return_attention_mask": True,
}
W2V_BERT_CONFIG_DIR = "hf_cache/w2v-bert-2.0"


def require_extra(module: str) -> Any:
    """Import one of the ``indextts`` extra's packages, or fail the voice with the install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise EngineError(f"{EXTRA_HINT} ({module} is missing)") from None


# -- reference clip -------------------------------------------------------------------------


def sinc_resample(audio: np.ndarray, from_rate: int, to_rate: int, zeros: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """Hann-windowed sinc interpolation, the filter ``torchaudio.functional.resample`` uses.

    Upstream derives its 16 kHz copy of the reference clip this way; w2v-BERT and CAMPPlus
    were trained on it, so an FFT or soxr resampler would shift their inputs slightly.
    """
    if from_rate == to_rate:
        return audio.astype(np.float32)
    common = math.gcd(from_rate, to_rate)
    up, down = to_rate // common, from_rate // common
    cutoff = min(up, down) * rolloff
    half = math.ceil(zeros * down / cutoff)
    taps = np.arange(-half, half + down, dtype=np.float64) / down
    phases = (-np.arange(up, dtype=np.float32) / np.float32(up)).astype(np.float64)
    t = np.clip((phases[:, None] + taps[None, :]) * cutoff, -zeros, zeros)
    window = np.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    sinc = np.where(t == 0, 1.0, np.sin(t) / np.where(t == 0, 1.0, t))
    kernel = (sinc * window * cutoff / down).astype(np.float32)  # [up, taps]
    padded = np.pad(audio.astype(np.float32), (half, half + down))
    frames = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])[::down]
    out = (frames @ kernel.T).reshape(-1)
    return out[: math.ceil(up * len(audio) / down)].astype(np.float32)


def load_reference(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A reference clip as upstream reads it: (22,050 Hz, 16 kHz), mono float32, at most 15 s."""
    soxr = require_extra("soxr")
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as err:
        raise EngineError(f"Cannot read the reference clip {path}: {err}") from err
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    audio = audio[: MAX_REFERENCE_SECONDS * SAMPLE_RATE]
    if len(audio) < MIN_REFERENCE_SECONDS * SAMPLE_RATE:
        raise EngineError(f"The reference clip {path} is shorter than {MIN_REFERENCE_SECONDS} s")
    return audio, sinc_resample(audio, SAMPLE_RATE, SEMANTIC_RATE)


def campplus_fbank(audio_16k: np.ndarray) -> np.ndarray:
    """CAMPPlus input: Kaldi log filterbank (80 bins, no dither), minus its mean over the clip → [1, T, 80].

    The signal stays in [-1, 1] as upstream passes it; the log floor is float32 eps, which is
    what quiet frames hit, so it must match for the mean to match.
    """
    knf = require_extra("kaldi_native_fbank")
    options = knf.FbankOptions()
    options.frame_opts.samp_freq = float(SEMANTIC_RATE)
    options.frame_opts.dither = 0.0
    options.frame_opts.snip_edges = True
    options.mel_opts.num_bins = MEL_BINS
    options.mel_opts.low_freq = 20.0
    options.mel_opts.high_freq = 0.0  # Nyquist
    options.use_energy = False
    fbank = knf.OnlineFbank(options)
    fbank.accept_waveform(float(SEMANTIC_RATE), audio_16k.astype(np.float32))
    fbank.input_finished()
    frames = np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)]).astype(np.float32)
    return (frames - frames.mean(axis=0, keepdims=True))[None]


class W2VFeatures:
    """w2v-BERT 2.0 input features: the export's own preprocessor config if it has one."""

    def __init__(self, root: Path) -> None:
        transformers = require_extra("transformers")
        config = root / W2V_BERT_CONFIG_DIR / "preprocessor_config.json"
        settings = dict(W2V_BERT_PREPROCESSOR)
        if config.is_file():
            settings.update({k: v for k, v in json.loads(config.read_text(encoding="utf-8")).items() if k in settings})
        self._extractor = transformers.SeamlessM4TFeatureExtractor(**settings)

    def __call__(self, audio_16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """→ (input_features [1, T, 160] float32, attention_mask [1, T] int64)."""
        out = self._extractor(audio_16k.astype(np.float32), sampling_rate=SEMANTIC_RATE, return_tensors="np")
        return out["input_features"].astype(np.float32), out["attention_mask"].astype(np.int64)


@lru_cache(maxsize=1)
def _slaney_filters() -> np.ndarray:
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(num_frequency_bins=MEL_FFT // 2 + 1, num_mel_filters=MEL_BINS, min_frequency=0.0,
                           max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm="slaney", mel_scale="slaney")
    return bank.T.astype(np.float32)  # [80, 513]


def reference_mel(audio_22k: np.ndarray) -> np.ndarray:
    """The flow-matching model's mel of a clip → [1, 80, frames] (frames = samples // 256)."""
    require_extra("transformers")
    pad = (MEL_FFT - HOP) // 2
    padded = np.pad(audio_22k.astype(np.float32), (pad, pad), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, MEL_FFT)[::HOP]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(MEL_FFT) / MEL_FFT)).astype(np.float32)  # periodic Hann
    spectrum = np.fft.rfft(frames * window, axis=1)
    magnitude = np.sqrt(spectrum.real**2 + spectrum.imag**2 + 1e-9).astype(np.float32)
    mel = _slaney_filters() @ magnitude.T
    return np.log(np.maximum(mel, 1e-5))[None].astype(np.float32)


# -- text ---------------------------------------------------------------------------------

# Upstream's punctuation clean-up (TextNormalizer.char_rep_map): the text models were trained on
# ASCII punctuation; Chinese text also maps "$" to ".".
PUNCTUATION_MAP = {
    "：": ",", "；": ",", ";": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": " ", "·": "-",
    "、": ",", "...": "…", ",,,": "…", "，，，": "…", "……": "…", "“": "'", "”": "'", '"': "'",
    "‘": "'", "’": "'", "（": "'", "）": "'", "(": "'", ")": "'", "《": "'", "》": "'", "【": "'",
    "】": "'", "[": "'", "]": "'", "—": "-", "～": "-", "~": "-", "「": "'", "」": "'", ":": ",",
}
_PUNCTUATION = re.compile("|".join(re.escape(k) for k in PUNCTUATION_MAP))
_PUNCTUATION_ZH = re.compile("|".join(re.escape(k) for k in ("$", *PUNCTUATION_MAP)))
_HANZI = re.compile(r"[\u4e00-\u9fff]")


def map_punctuation(text: str, chinese: bool) -> str:
    pattern = _PUNCTUATION_ZH if chinese else _PUNCTUATION
    return pattern.sub(lambda m: "." if m.group() == "$" else PUNCTUATION_MAP[m.group()], text)


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


def _cardinal(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for scale, word in _SCALES:
        if n >= scale:
            rest = n % scale
            return f"{_cardinal(n // scale)} {word}" + (f" {_cardinal(rest)}" if rest else "")
    raise AssertionError(n)


def spell_numbers(text: str) -> str:
    """English digits as words (``15`` → ``fifteen``, ``2.5`` → ``two point five``): upstream's
    English normalizer does this before tokenizing; our English front end leaves plain numbers
    to espeak, which reads them itself, but the IndexTTS text models only saw words."""

    def spell(match: re.Match[str]) -> str:
        whole, _, fraction = match.group().replace(",", "").partition(".")
        words = _cardinal(int(whole)) if len(whole) <= 15 else " ".join(_ONES[int(d)] for d in whole)
        return words + ("" if not fraction else " point " + " ".join(_ONES[int(d)] for d in fraction))

    return re.sub(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", spell, text)


def text_language(sentence: Sentence) -> str:
    """The language tag IndexTTS gets: ``zh`` for any sentence with a Chinese character."""
    return "zh" if _HANZI.search(sentence.normalized) else "en"


def pinyin_choices(sentence: Sentence) -> dict[int, str]:
    """Our polyphone decisions, as upstream spells inline pinyin: index in ``normalized`` → ``HANG2``.

    Only where our reading is another syllable than the character's everyday one: there the
    front end's context model decided something the IndexTTS model might not. Tones alone are
    left to the model, which applies its own sandhi. Spelling as upstream's ``correct_pinyin``:
    upper case, ü as V, and j/q/x + u as V (``QU4`` → ``QV4``).
    """
    text = sentence.normalized
    choices: dict[int, str] = {}
    for syllable in sentence.syllables:
        char, index = syllable.char, syllable.index
        if not _HANZI.fullmatch(char) or index >= len(text) or text[index] != char:
            continue
        everyday = default_dictionaries().char_reading(char)  # not pypinyin: it loads ~45 MB on import
        if everyday.rstrip("012345") != syllable.pinyin.rstrip("012345"):
            spelled = syllable.pinyin.replace("ü", "v")
            spelled = re.sub(r"^([jqx])u", r"\1v", spelled)
            choices[index] = spelled.upper()
    return choices


# -- sampling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingOptions:
    temperature: float = 0.8
    top_k: int = 30
    top_p: float = 0.8
    repetition_penalty: float = 10.0


def sample_token(logits: np.ndarray, seen: set[int], options: SamplingOptions, rng: np.random.Generator) -> int:
    """Upstream's generate(): repetition penalty, temperature, top-k, top-p, one draw.

    ``top_k=1`` is greedy decoding. The draw is the inverse CDF at one ``rng.random()``.
    """
    logits = logits.astype(np.float64).reshape(-1).copy()
    if seen and options.repetition_penalty != 1.0:
        index = np.fromiter(seen, dtype=np.int64)
        index = index[index < len(logits)]
        values = logits[index]
        logits[index] = np.where(values < 0, values * options.repetition_penalty, values / options.repetition_penalty)
    if options.top_k == 1:
        return int(np.argmax(logits))
    logits /= max(options.temperature, 1e-5)
    if 0 < options.top_k < len(logits):
        cutoff = np.partition(logits, -options.top_k)[-options.top_k]
        logits[logits < cutoff] = -np.inf
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if 0.0 < options.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        ahead = np.cumsum(probs[order]) - probs[order]  # probability mass ranked above each token
        keep = np.zeros(len(probs), dtype=bool)
        keep[order[ahead < options.top_p]] = True
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum()
    cdf = np.cumsum(probs)
    return int(min(np.searchsorted(cdf / cdf[-1], rng.random(), side="right"), len(probs) - 1))


# -- flow matching -------------------------------------------------------------------------


Velocity = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(x [2,80,T], prompt_x [2,80,T], t [2], style [2,192], cond [2,T,512]) → velocity [2,80,T]."""


def euler_flow(velocity: Velocity, condition: np.ndarray, ref_mel: np.ndarray, style: np.ndarray, noise: np.ndarray,
               steps: int, cfg_rate: float, cancel: threading.Event) -> np.ndarray:
    """Euler steps from noise to mel, the conditional and unconditional estimates in one batch of 2.

    The prompt frames are held at zero in ``x`` and given as ``prompt_x`` instead; the result
    is the generated part only → [1, 80, T - prompt].
    """
    prompt = ref_mel.shape[-1]
    x = noise.astype(np.float32).copy()
    x[..., :prompt] = 0
    prompt_x = np.zeros_like(x)
    prompt_x[..., :prompt] = ref_mel[..., :prompt]
    prompt_x2 = np.concatenate([prompt_x, np.zeros_like(prompt_x)])
    style2 = np.concatenate([style, np.zeros_like(style)]).astype(np.float32)
    cond2 = np.concatenate([condition, np.zeros_like(condition)]).astype(np.float32)
    times = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    for t, t_next in zip(times[:-1], times[1:]):
        check_cancel(cancel)
        v = velocity(np.concatenate([x, x]), prompt_x2, np.array([t, t], np.float32), style2, cond2)
        x = x + (t_next - t) * ((1.0 + cfg_rate) * v[0:1] - cfg_rate * v[1:2])
        x[..., :prompt] = 0
    return x[:, :, prompt:].astype(np.float32)
