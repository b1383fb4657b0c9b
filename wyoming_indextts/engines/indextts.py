"""IndexTTS-2.5 ONNX export: zero-shot voices from short reference recordings.

This is the quality tier, not the default: upstream reports a CPU real-time factor around 3
(a 3-second sentence takes about 9 seconds), against ~0.05 for the default Chinese voice.

Pipeline per voice folder (graph names as in the public export):
    reference clip ─► campplus (style) ─┐
                   ─► semantic_model ─► emo_vec ─► GPT conditioning (spk_proj.npz)
    text ─► tiktoken ─► gpt_prefill + gpt_step (KV cache, sampling) ─► semantic codes
    codes ─► semantic_codec_decode ─► length_regulator ─► cfm_estimator (Euler, CFG) ─► mel
    mel ─► bigvgan ─► 22.05 kHz audio

Conditioning is computed once per reference clip and cached on disk next to the voice.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from ..audio import resample
from ..frontend import Sentence
from ..frontend.dictionaries import default_dictionaries
from ..onnx import create_session
from .base import EngineError, Speaker, SynthesisConfig, VoiceInfo, check_cancel

if TYPE_CHECKING:
    import tiktoken

_LOGGER = logging.getLogger(__name__)

GRAPHS = {
    "campplus": "campplus.onnx",
    "semantic_model": "semantic_model/semantic_model.onnx",
    "emo_vec": "emo_vec.onnx",
    "gpt_prefill": "gpt_prefill/gpt_prefill.onnx",
    "gpt_step": "gpt_step/gpt_step.onnx",
    "codec_decode": "semantic_codec_decode.onnx",
    "length_regulator": "length_regulator.onnx",
    "cfm": "cfm_estimator/cfm_estimator.onnx",
    "bigvgan": "bigvgan.onnx",
}
TOKENIZER_FILE = "multilingual_zh_ja_yue_char_del.tiktoken"
SPEAKER_PROJECTION = "spk_proj.npz"
SAMPLE_RATE = 22050
HOP = 256
STOP_CODE = 8193
START_CODE = 8192
STOP_TEXT = 1
FRAMES_PER_CODE = 1.72  # mel frames per semantic code at 22.05 kHz / 256
MAX_REFERENCE_SECONDS = 15
# Special tokens follow the base vocabulary in this order upstream; only the first ones
# matter for the language prefix.
_SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|zh|>")
_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_LANGUAGE_IDS = {"en": 0, "zh": 1}


@dataclass(frozen=True)
class IndexTTSOptions:
    steps: int = 10
    """Flow-matching Euler steps (upstream default 25; fewer is faster, a little rougher)."""
    cfg_rate: float = 0.7
    temperature: float = 0.8
    top_k: int = 30
    top_p: float = 0.8
    repetition_penalty: float = 10.0
    max_tokens: int = 1500
    seed: int | None = None

    @classmethod
    def from_manifest(cls, options: dict[str, Any]) -> "IndexTTSOptions":
        known = {k: options[k] for k in cls.__dataclass_fields__ if k in options}
        return cls(**known)


@dataclass(frozen=True)
class Conditioning:
    """Everything a reference clip contributes, computed once."""

    style: np.ndarray  # [1, 192] speaker embedding (campplus)
    conds: np.ndarray  # [1, 3, 1280] GPT conditioning
    prompt_condition: np.ndarray  # [1, P, 512]
    ref_mel: np.ndarray  # [1, 80, P]


# -- signal processing ------------------------------------------------------------------


def _mel_filters(n_fft: int, rate: int, n_mels: int, low: float, high: float) -> np.ndarray:
    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(f) / 700.0)

    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = np.linspace(mel(low), mel(high), n_mels + 2)
    m = mel(bins)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0, np.minimum((m - left) / (center - left), (right - m) / (right - center))).astype(np.float32)


def kaldi_fbank(audio: np.ndarray, rate: int = 16000, n_mels: int = 80) -> np.ndarray:
    """Kaldi-style log mel filterbank (25 ms povey windows every 10 ms, pre-emphasis 0.97)."""
    length, shift, n_fft = int(0.025 * rate), int(0.010 * rate), 512
    if len(audio) < length:
        audio = np.pad(audio, (0, length - len(audio)))
    count = 1 + (len(audio) - length) // shift
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float64), length)[::shift][:count].copy()
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= 0.97 * frames[:, :-1]
    frames[:, 0] *= 0.03
    frames *= np.hanning(length) ** 0.85
    power = np.abs(np.fft.rfft(frames, n=n_fft)) ** 2
    return np.log(np.maximum(power @ _mel_filters(n_fft, rate, n_mels, 20.0, rate / 2).T, 1e-10)).astype(np.float32)


def semantic_features(audio_16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w2v-BERT input: fbank of the 16-bit-scaled signal, normalized per bin, two frames stacked."""
    feats = kaldi_fbank(audio_16k * 32768.0)
    feats = (feats - feats.mean(axis=0)) / np.sqrt(feats.var(axis=0) + 1e-7)
    feats = feats[: len(feats) // 2 * 2].reshape(-1, 2 * feats.shape[1])
    return feats[None].astype(np.float32), np.ones((1, len(feats)), dtype=np.int64)


def vocoder_mel(audio_22k: np.ndarray) -> np.ndarray:
    """BigVGAN's log mel (1024-point, hop 256, 80 bins up to 8 kHz) → [80, frames]."""
    n_fft = 1024
    pad = (n_fft - HOP) // 2
    padded = np.pad(audio_22k.astype(np.float32), (pad, pad), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::HOP] * np.hanning(n_fft + 1)[:-1]
    magnitude = np.abs(np.fft.rfft(frames, n=n_fft))
    mel = magnitude @ _mel_filters(n_fft, SAMPLE_RATE, 80, 0.0, 8000.0).T
    return np.log(np.maximum(mel, 1e-5)).T.astype(np.float32)


# -- sampling ------------------------------------------------------------------------------


def sample_token(logits: np.ndarray, seen: set[int], options: IndexTTSOptions, rng: np.random.Generator) -> int:
    """Repetition penalty, temperature, top-k, top-p, then a draw."""
    logits = logits.astype(np.float64).copy()
    if seen and options.repetition_penalty != 1.0:
        index = np.fromiter(seen, dtype=np.int64)
        index = index[index < len(logits)]
        values = logits[index]
        logits[index] = np.where(values > 0, values / options.repetition_penalty, values * options.repetition_penalty)
    logits /= max(options.temperature, 1e-5)
    if 0 < options.top_k < len(logits):
        cutoff = np.partition(logits, -options.top_k)[-options.top_k]
        logits[logits < cutoff] = -np.inf
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if options.top_p < 1.0:
        order = np.argsort(-probs)
        keep = np.cumsum(probs[order]) - probs[order] < options.top_p
        mask = np.zeros_like(probs, dtype=bool)
        mask[order[keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    return int(rng.choice(len(probs), p=probs))


# -- the engine ----------------------------------------------------------------------------


class IndexTTSEngine:
    """Speakers are the clips in ``voices/*.wav``; sessions are shared by all of them."""

    def __init__(self, info: VoiceInfo, threads: int = 1) -> None:
        root = info.path
        missing = [rel for rel in GRAPHS.values() if not (root / rel).is_file()]
        missing += [name for name in (TOKENIZER_FILE, SPEAKER_PROJECTION) if not (root / name).is_file()]
        if missing:
            raise EngineError(f"IndexTTS voice {info.name!r} is missing {', '.join(missing)} in {root}")
        clips = sorted((root / "voices").glob("*.wav"))
        if not clips:
            raise EngineError(f"IndexTTS voice {info.name!r} has no reference clips in {root / 'voices'}")
        try:
            import tiktoken  # noqa: F401 — an optional extra: say so clearly if it is missing
        except ImportError:
            raise EngineError("IndexTTS voices need the optional extra: pip install 'wyoming-indextts[indextts]'") from None
        self._tokenizer = _load_tokenizer(root / TOKENIZER_FILE)
        projection = np.load(root / SPEAKER_PROJECTION)
        self._projection_w = projection["weight"].astype(np.float32)
        self._projection_b = projection["bias"].astype(np.float32)
        self._sessions = {name: create_session(root / rel, threads) for name, rel in GRAPHS.items()}
        self._layers = sum(1 for i in self._sessions["gpt_step"].get_inputs() if i.name.startswith("past_kv_") and i.name.endswith("_k"))
        self.options = IndexTTSOptions.from_manifest(info.options)
        self._clips = {clip.stem: clip for clip in clips}
        self.info = replace(info, sample_rate=SAMPLE_RATE, speakers=tuple(Speaker(name, i) for i, name in enumerate(self._clips)))
        self._conditioning: dict[str, Conditioning] = {}
        self._lock = threading.Lock()
        self.conditioning_runs = 0
        """How often a clip was actually analysed (not served from a cache)."""

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def warm_up(self) -> None:
        for name in self._clips:
            self.conditioning(name)

    # -- conditioning, once per clip ---------------------------------------------------------

    def conditioning(self, speaker: str | None) -> Conditioning:
        name = self.info.speakers[self.info.speaker_id(speaker)].name
        with self._lock:
            cached = self._conditioning.get(name)
            if cached is None:
                cached = self._load_or_compute(self._clips[name])
                self._conditioning[name] = cached
        return cached

    def _load_or_compute(self, clip: Path) -> Conditioning:
        digest = hashlib.sha256(clip.read_bytes() + self._projection_w.tobytes()[:4096]).hexdigest()[:24]
        cache = self.info.path / "cache" / f"{clip.stem}-{digest}.npz"
        if cache.is_file():
            with np.load(cache) as data:
                return Conditioning(**{k: data[k] for k in Conditioning.__dataclass_fields__})
        result = self._analyse(clip)
        try:
            cache.parent.mkdir(exist_ok=True)
            np.savez(cache, **{k: getattr(result, k) for k in Conditioning.__dataclass_fields__})
        except OSError as err:
            _LOGGER.warning("Cannot cache the conditioning of %s (%s); it is recomputed at each start", clip, err)
        return result

    def _analyse(self, clip: Path) -> Conditioning:
        self.conditioning_runs += 1
        audio, rate = sf.read(clip, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)[: MAX_REFERENCE_SECONDS * rate]
        audio_16k, audio_22k = resample(audio, rate, 16000), resample(audio, rate, SAMPLE_RATE)
        s = self._sessions
        features, mask = semantic_features(audio_16k)
        (semantic,) = s["semantic_model"].run(None, {"input_features": features, "attention_mask": mask})
        (emotion,) = s["emo_vec"].run(None, {"feat": semantic, "ilens": np.array([semantic.shape[1]], np.int64)})
        fbank = kaldi_fbank(audio_16k)
        (style,) = s["campplus"].run(None, {"fbank": (fbank - fbank.mean(axis=0))[None]})
        speaker = style @ self._projection_w.T + self._projection_b
        conds = np.concatenate([(speaker + emotion)[:, None, :], np.zeros((1, 2, speaker.shape[-1]), np.float32)], axis=1)
        ref_mel = vocoder_mel(audio_22k)[None]
        (prompt,) = s["length_regulator"].run(None, {"x": semantic, "template": np.zeros((1, ref_mel.shape[-1], 1), np.float32)})
        return Conditioning(style.astype(np.float32), conds.astype(np.float32), prompt.astype(np.float32), ref_mel)

    # -- text ------------------------------------------------------------------------------

    def text_ids(self, sentence: Sentence) -> np.ndarray:
        language = "en" if sentence.language == "en" else "zh"
        return np.asarray([self._tokenizer.encode(f"<|{language}|> " + annotate_polyphones(sentence), allowed_special="all")], np.int64)

    # -- synthesis -------------------------------------------------------------------------

    def generate_codes(self, text_ids: np.ndarray, conds: np.ndarray, language: str, rng: np.random.Generator,
                       cancel: threading.Event) -> np.ndarray:
        """Prefill once, then one step per code with the KV cache, until the stop code or the cap."""
        outputs = self._sessions["gpt_prefill"].run(
            None, {"text_ids": text_ids, "conds": conds, "lang_id": np.array([_LANGUAGE_IDS.get(language, 1)], np.int64)}
        )
        logits, cache = outputs[0].reshape(-1), list(outputs[1:])
        seen = {STOP_TEXT, START_CODE}
        codes: list[int] = []
        step = self._sessions["gpt_step"]
        for position in range(self.options.max_tokens):
            check_cancel(cancel)
            token = sample_token(logits, seen, self.options, rng)
            if token == STOP_CODE:
                break
            codes.append(token)
            seen.add(token)
            feeds: dict[str, np.ndarray] = {"token": np.array([[token]], np.int64), "pos_idx": np.array([position + 2], np.int64)}
            for layer in range(self._layers):
                feeds[f"past_kv_{layer}_k"], feeds[f"past_kv_{layer}_v"] = cache[2 * layer], cache[2 * layer + 1]
            outputs = step.run(None, feeds)
            logits, cache = outputs[0].reshape(-1), list(outputs[1:])
        return np.asarray(codes, dtype=np.int64)

    def flow(self, condition: np.ndarray, ref_mel: np.ndarray, style: np.ndarray, rng: np.random.Generator,
             cancel: threading.Event) -> np.ndarray:
        """Euler steps of the flow-matching estimator, conditional and unconditional in one batch of 2."""
        total, prompt = condition.shape[1], ref_mel.shape[-1]
        x = rng.standard_normal((1, 80, total)).astype(np.float32)
        x[..., :prompt] = 0
        prompt_x = np.zeros_like(x)
        prompt_x[..., :prompt] = ref_mel[..., :prompt]
        times = np.linspace(0.0, 1.0, self.options.steps + 1, dtype=np.float32)
        estimator = self._sessions["cfm"]
        for t, t_next in zip(times[:-1], times[1:]):
            check_cancel(cancel)
            (velocity,) = estimator.run(None, {
                "x": np.concatenate([x, x]), "prompt_x": np.concatenate([prompt_x, np.zeros_like(prompt_x)]),
                "x_lens": np.array([total], np.int64), "t": np.array([t, t], np.float32),
                "style": np.concatenate([style, np.zeros_like(style)]), "cond": np.concatenate([condition, np.zeros_like(condition)]),
            })
            guided = (1.0 + self.options.cfg_rate) * velocity[0:1] - self.options.cfg_rate * velocity[1:2]
            x = x + (t_next - t) * guided
            x[..., :prompt] = 0
        return x[:, :, prompt:]

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        if not sentence.normalized.strip():
            return
        conditioning = self.conditioning(config.speaker)
        rng = np.random.default_rng(self.options.seed)
        language = "en" if sentence.language == "en" else "zh"
        codes = self.generate_codes(self.text_ids(sentence), conditioning.conds, language, rng, cancel)
        if not len(codes):
            return
        check_cancel(cancel)
        (latent,) = self._sessions["codec_decode"].run(None, {"codes": codes[None]})
        frames = max(1, int(latent.shape[1] * FRAMES_PER_CODE / max(0.25, config.speed)))
        (condition,) = self._sessions["length_regulator"].run(None, {"x": latent, "template": np.zeros((1, frames, 1), np.float32)})
        mel = self.flow(np.concatenate([conditioning.prompt_condition, condition], axis=1), conditioning.ref_mel, conditioning.style, rng, cancel)
        check_cancel(cancel)
        (audio,) = self._sessions["bigvgan"].run(None, {"mel": mel.astype(np.float32)})
        yield audio.reshape(-1)[: mel.shape[-1] * HOP].astype(np.float32)


_HANZI = re.compile(r"[\u4e00-\u9fff]")


def annotate_polyphones(sentence: Sentence) -> str:
    """Pass our polyphone choices in the model's own pinyin syntax (``银行`` → ``银HANG2``).

    Only where our reading is a different syllable from the character's everyday reading: there
    the front end's context model has decided something the IndexTTS model might not; tones alone
    are left to the model, which applies its own sandhi.
    """
    text = list(sentence.normalized)
    for syllable in sentence.syllables:
        char, index = syllable.char, syllable.index
        if not _HANZI.fullmatch(char) or index >= len(text) or text[index] != char:
            continue
        everyday = default_dictionaries().char_reading(char)  # not pypinyin: it loads ~45 MB on import
        if everyday.rstrip("012345") != syllable.pinyin.rstrip("012345"):
            text[index] = syllable.pinyin.upper().replace("Ü", "V")
    return "".join(text)


def _load_tokenizer(path: Path) -> "tiktoken.Encoding":
    import base64

    import tiktoken

    ranks = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    specials = {token: len(ranks) + i for i, token in enumerate(_SPECIALS)}
    return tiktoken.Encoding(
        name=path.name, pat_str=_PAT, mergeable_ranks=ranks, special_tokens=specials, explicit_n_vocab=len(ranks) + len(specials)
    )
