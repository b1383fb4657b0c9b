"""IndexTTS voices on ONNX Runtime: zero-shot voices from short reference recordings.

Two export layouts are supported, told apart by the files in the voice folder:

- **IndexTTS-2.5** (this module), the layout ``index-tts-2-5-onnx`` runs::

    clip ─► campplus (style)  ─┐
         ─► semantic_model ─► emo_vec ─► + spk_proj.npz ─► GPT conditioning [1, 3, 1280]
    text ─► tiktoken ─► gpt_prefill + gpt_step (KV cache, sampling) ─► semantic codes
    codes ─► semantic_codec_decode ─► length_regulator ─► cfm_estimator (Euler, CFG) ─► mel
    mel ─► bigvgan ─► 22,050 Hz audio

- **IndexTTS-2** (``indextts2.py``), the layout ``indextts-onnx`` runs (``gpt2_init``,
  ``gpt2_step``, ``s2mel_*``, ``dit_step``, sentencepiece ``bpe.model``).

This is the quality tier, not the default: published CPU real-time factors are around 3 (a
3-second sentence takes about 9 seconds), against ~0.03 for the default Chinese voice.
Conditioning is computed once per reference clip and cached on disk next to the voice.

``python -m wyoming_indextts.engines.indextts --check DIR`` checks an export before loading it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..frontend import Sentence
from ..onnx import create_session
from .base import EngineError, Speaker, SynthesisConfig, VoiceInfo, check_cancel
from .indextts_common import (
    FRAMES_PER_CODE,
    HOP,
    MEL_BINS,
    SAMPLE_RATE,
    START_CODE,
    STOP_CODE,
    STOP_TEXT,
    W2VFeatures,
    SamplingOptions,
    campplus_fbank,
    euler_flow,
    load_reference,
    map_punctuation,
    pinyin_choices,
    reference_mel,
    require_extra,
    spell_numbers,
    sample_token,
    text_language,
)

if TYPE_CHECKING:
    import onnxruntime as ort
    import tiktoken

_LOGGER = logging.getLogger(__name__)

FEATURES_VERSION = 2
"""Part of the conditioning cache key: bump when a feature computation changes (v2: Slaney
mel, float32-eps fbank floor, SeamlessM4T features, sinc-resampled 16 kHz)."""
MAX_SEGMENT_TOKENS = 120  # upstream's max_text_tokens_per_segment
SEGMENT_PAUSE = 0.2  # seconds of silence between segments (upstream's interval_silence)


# -- export layouts -------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name
    rank: int
    optional: bool = False
    """An input the engine feeds only when the graph declares it."""


@dataclass(frozen=True)
class GraphSpec:
    key: str
    path: str
    """Relative to the voice folder."""
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    kv_inputs: tuple[str, ...] = ()
    """Names of one layer's cache inputs (key, value), with ``{i}`` for the layer."""
    kv_outputs: tuple[str, ...] = ()
    fetch_by_name: bool = False
    """True where the engine asks for outputs by name (the GPT graphs): then names must match."""
    variants: tuple[str, ...] = ()
    """Other file names that hold the same graph, preferred in this order before ``path``."""


@dataclass(frozen=True)
class Layout:
    name: str
    graphs: tuple[GraphSpec, ...]
    files: tuple[str, ...]
    """Other files the engine needs (tokenizer, projections)."""
    marker: tuple[str, ...]
    """Any of these present means the folder holds this layout."""


def tensor(name: str, dtype: str, rank: int, optional: bool = False) -> TensorSpec:
    return TensorSpec(name, dtype, rank, optional)


F32, I64, I32 = "float32", "int64", "int32"
TOKENIZER_FILE = "multilingual_zh_ja_yue_char_del.tiktoken"
SPEAKER_PROJECTION = "spk_proj.npz"
KV_IN = ("past_kv_{i}_k", "past_kv_{i}_v")
KV_OUT = ("present_kv_{i}_k", "present_kv_{i}_v")

LAYOUT = Layout(
    name="IndexTTS-2.5",
    graphs=(
        GraphSpec("campplus", "campplus.onnx", (tensor("fbank", F32, 3),), (tensor("spk_emb", F32, 2),)),
        GraphSpec("semantic_model", "semantic_model/semantic_model.onnx",
                  (tensor("input_features", F32, 3), tensor("attention_mask", I64, 2)), (tensor("semantic_feat", F32, 3),)),
        GraphSpec("emo_vec", "emo_vec.onnx", (tensor("feat", F32, 3), tensor("ilens", I64, 1)), (tensor("emo_vec", F32, 2),)),
        GraphSpec("gpt_prefill", "gpt_prefill/gpt_prefill.onnx",
                  (tensor("text_ids", I64, 2), tensor("conds", F32, 3), tensor("lang_id", I64, 1)), (tensor("logits", F32, 2),),
                  kv_outputs=KV_OUT, fetch_by_name=True),
        GraphSpec("gpt_step", "gpt_step/gpt_step.onnx", (tensor("token", I64, 2), tensor("pos_idx", I64, 1)),
                  (tensor("logits", F32, 2),), kv_inputs=KV_IN, kv_outputs=KV_OUT, fetch_by_name=True),
        GraphSpec("codec_decode", "semantic_codec_decode.onnx", (tensor("codes", I64, 2),), (tensor("latent", F32, 3),)),
        GraphSpec("length_regulator", "length_regulator.onnx", (tensor("x", F32, 3), tensor("template", F32, 3)),
                  (tensor("out", F32, 3),)),
        GraphSpec("cfm", "cfm_estimator/cfm_estimator.onnx",
                  (tensor("x", F32, 3), tensor("prompt_x", F32, 3), tensor("x_lens", I64, 1), tensor("t", F32, 1),
                   tensor("style", F32, 2), tensor("cond", F32, 3)), (tensor("v", F32, 3),)),
        GraphSpec("bigvgan", "bigvgan.onnx", (tensor("mel", F32, 3),), (tensor("wav", F32, 3),)),
    ),
    files=(TOKENIZER_FILE, SPEAKER_PROJECTION),
    marker=(TOKENIZER_FILE, "gpt_prefill", "cfm_estimator"),
)

# The special tokens that follow the base vocabulary, in upstream's order: ids are positional.
_WHISPER_LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg lt la "
    "mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so af oc ka be "
    "tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su"
).split()
_AUDIO_EVENTS = ("ASR", "AED", "SER", "Speech", "/Speech", "BGM", "/BGM", "Laughter", "/Laughter", "Applause", "/Applause")
_EMOTIONS = ("HAPPY", "SAD", "ANGRY", "NEUTRAL")
_TASKS = ("translate", "transcribe", "startoflm", "startofprev", "nospeech", "notimestamps")
_VOCAL = ("TTS/B", "TTS/O", "TTS/Q", "TTS/A", "TTS/CO", "TTS/CL", "TTS/H", *(f"TTS/SP{i:02d}" for i in range(1, 14)))
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|startoftranscript|>",
    *(f"<|{c}|>" for c in _WHISPER_LANGUAGES), *(f"<|{e}|>" for e in _AUDIO_EVENTS), *(f"<|{e}|>" for e in _EMOTIONS),
    *(f"<|{t}|>" for t in _TASKS), *(f"<|SPECIAL_TOKEN_{i}|>" for i in range(1, 31)), *(f"<|{v}|>" for v in _VOCAL),
    *(f"<|{i * 0.02:.2f}|>" for i in range(1501)),
)
PINYIN_MARK = "<|SPECIAL_TOKEN_2|>"
"""2.5 marks a chosen pronunciation of a Chinese character as MARK + ``HANG2`` + MARK."""
_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_LANGUAGE_IDS = {"en": 0, "zh": 1}  # index in upstream's language table, the GPT's lang_id


# -- checking graphs against a layout --------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    rank: int


def resolve_graph(root: Path, spec: GraphSpec) -> Path | None:
    for rel in (*spec.variants, spec.path):
        if (root / rel).is_file():
            return root / rel
    return None


def compare_signature(spec: GraphSpec, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> tuple[list[str], list[str]]:
    """(errors, warnings) of a graph's declared inputs and outputs against what the engine feeds and reads."""
    errors: list[str] = []
    warnings: list[str] = []
    by_name = {t.name: t for t in inputs}
    for want in spec.inputs:
        have = by_name.get(want.name)
        if have is None:
            if not want.optional:
                errors.append(f"input {want.name!r} missing")
        elif (have.dtype, have.rank) != (want.dtype, want.rank):
            errors.append(f"input {want.name!r} is {have.dtype} rank {have.rank}, expected {want.dtype} rank {want.rank}")
    known = {t.name for t in spec.inputs}
    cache_inputs = _kv_regex(spec.kv_inputs)
    for have in inputs:
        if have.name not in known and not (cache_inputs and cache_inputs.fullmatch(have.name)):
            errors.append(f"unexpected input {have.name!r} (the engine does not feed it)")
    if spec.kv_inputs:
        errors += _check_cache(spec.kv_inputs, inputs, "input")
    out_names = {t.name: t for t in outputs}
    for want in spec.outputs:
        have = out_names.get(want.name)
        if have is None:
            if spec.fetch_by_name or not outputs:
                errors.append(f"output {want.name!r} missing")
            else:
                first = outputs[0]
                warnings.append(f"output is named {first.name!r}, the published export calls it {want.name!r} (the engine reads the first output)")
                if first.rank != want.rank:
                    errors.append(f"output {first.name!r} has rank {first.rank}, expected {want.rank}")
        elif (have.dtype, have.rank) != (want.dtype, want.rank):
            errors.append(f"output {want.name!r} is {have.dtype} rank {have.rank}, expected {want.dtype} rank {want.rank}")
    if spec.kv_outputs:
        errors += _check_cache(spec.kv_outputs, outputs, "output")
    return errors, warnings


def _kv_regex(names: tuple[str, ...]) -> re.Pattern[str] | None:
    if not names:
        return None
    return re.compile("|".join(re.escape(n).replace(r"\{i\}", r"(\d+)") for n in names))


def cache_layers(names: tuple[str, ...], tensors: Sequence[TensorInfo]) -> int:
    """How many layers' cache tensors a graph declares (by the first name pattern)."""
    regex = _kv_regex(names[:1])
    assert regex is not None
    return len({m.group(1) for t in tensors if (m := regex.fullmatch(t.name))})


def _check_cache(names: tuple[str, ...], tensors: Sequence[TensorInfo], what: str) -> list[str]:
    layers = cache_layers(names, tensors)
    if not layers:
        return [f"no KV-cache {what}s named like {names[0].format(i=0)!r}"]
    by_name = {t.name: t for t in tensors}
    problems = []
    for i in range(layers):
        for pattern in names:
            name = pattern.format(i=i)
            have = by_name.get(name)
            if have is None:
                problems.append(f"KV-cache {what} {name!r} missing ({layers} layers found)")
            elif (have.dtype, have.rank) != (F32, 4):
                problems.append(f"KV-cache {what} {name!r} is {have.dtype} rank {have.rank}, expected float32 rank 4")
    return problems


def session_signature(session: ort.InferenceSession) -> tuple[list[TensorInfo], list[TensorInfo]]:
    def info(args: Sequence[Any]) -> list[TensorInfo]:
        return [TensorInfo(a.name, _ORT_TYPES.get(a.type, a.type), len(a.shape)) for a in args]

    return info(session.get_inputs()), info(session.get_outputs())


_ORT_TYPES = {"tensor(float)": F32, "tensor(int64)": I64, "tensor(int32)": I32, "tensor(float16)": "float16"}


def check_sessions(layout: Layout, sessions: dict[str, ort.InferenceSession], paths: dict[str, Path]) -> None:
    """Refuse a voice whose graphs the engine cannot feed, naming each problem."""
    problems = []
    for spec in layout.graphs:
        errors, warnings = compare_signature(spec, *session_signature(sessions[spec.key]))
        problems += [f"{paths[spec.key].name}: {e}" for e in errors]
        for warning in warnings:
            _LOGGER.debug("%s: %s", paths[spec.key].name, warning)
    if problems:
        raise EngineError(f"{layout.name} export does not match what the engine feeds: " + "; ".join(problems))


# -- the engine ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexTTSOptions:
    steps: int = 10
    """Flow-matching Euler steps (upstream's default is 25; fewer is faster, a little rougher)."""
    cfg_rate: float = 0.7
    # Flat, as a voice manifest writes them; the defaults are the sampler's own.
    temperature: float = SamplingOptions.temperature
    top_k: int = SamplingOptions.top_k
    """1 decodes greedily."""
    top_p: float = SamplingOptions.top_p
    repetition_penalty: float = SamplingOptions.repetition_penalty
    max_tokens: int = 1500
    seed: int | None = None

    @classmethod
    def from_manifest(cls, options: dict[str, Any]) -> "IndexTTSOptions":
        known = {k: options[k] for k in cls.__dataclass_fields__ if k in options}
        return cls(**known)

    @property
    def sampling(self) -> SamplingOptions:
        return SamplingOptions(self.temperature, self.top_k, self.top_p, self.repetition_penalty)


@dataclass(frozen=True)
class Conditioning:
    """Everything a reference clip contributes, computed once."""

    style: np.ndarray
    """[1, 192] CAMPPlus speaker embedding (the flow model's style)."""
    gpt_cond: np.ndarray
    """What the GPT is conditioned on: 2.5 [1, 3, 1280]; IndexTTS-2 the w2v-BERT features [1, T, 1024]."""
    prompt_condition: np.ndarray
    """[1, P, 512] the clip's semantic features stretched to its P mel frames."""
    ref_mel: np.ndarray
    """[1, 80, P]."""


class IndexTTSBase:
    """What both layouts share: reference clips as speakers, conditioning cache, the generation loop,
    flow matching and the vocoder. Subclasses say how their graphs are fed."""

    layout: Layout

    def __init__(self, info: VoiceInfo, threads: int = 1) -> None:
        root = info.path
        paths = {spec.key: resolve_graph(root, spec) for spec in self.layout.graphs}
        missing = [spec.path for spec in self.layout.graphs if paths[spec.key] is None]
        missing += [name for name in self.layout.files if not (root / name).is_file()]
        if missing:
            raise EngineError(f"{self.layout.name} voice {info.name!r} is missing {', '.join(missing)} in {root} "
                              f"(python -m wyoming_indextts.engines.indextts --check {root})")
        clips = sorted((root / "voices").glob("*.wav"))
        if not clips:
            raise EngineError(f"IndexTTS voice {info.name!r} has no reference clips in {root / 'voices'}")
        self._features = W2VFeatures(root)
        require_extra("kaldi_native_fbank")
        require_extra("soxr")
        self._load_text(root)
        resolved = {k: p for k, p in paths.items() if p is not None}
        self._sessions = {key: _open_graph(root, path, threads) for key, path in resolved.items()}
        check_sessions(self.layout, self._sessions, resolved)
        self._inputs = {key: {i.name for i in s.get_inputs()} for key, s in self._sessions.items()}
        decoder = next(g for g in self.layout.graphs if g.kv_inputs)
        self._layers = cache_layers(decoder.kv_inputs, session_signature(self._sessions[decoder.key])[0])
        self.options = IndexTTSOptions.from_manifest(info.options)
        self._clips = {clip.stem: clip for clip in clips}
        self.info = replace(info, sample_rate=SAMPLE_RATE, speakers=tuple(Speaker(n, i) for i, n in enumerate(self._clips)))
        self._conditioning: dict[str, Conditioning] = {}
        self._lock = threading.Lock()
        self.conditioning_runs = 0
        """How often a clip was actually analysed (not served from a cache)."""

    # -- what each layout provides -----------------------------------------------------------

    def _load_text(self, root: Path) -> None:
        raise NotImplementedError

    def prepare_text(self, sentence: Sentence) -> str:
        """The sentence as the model's text front end would have left it (before tokenizing)."""
        raise NotImplementedError

    def encode(self, text: str, language: str) -> list[int]:
        raise NotImplementedError

    def analyse(self, audio_22k: np.ndarray, audio_16k: np.ndarray) -> Conditioning:
        raise NotImplementedError

    def _prefill(self, text_ids: np.ndarray, conditioning: Conditioning, language: str) -> tuple[np.ndarray, Any]:
        """→ (logits of the first code, decoder state)."""
        raise NotImplementedError

    def _step(self, state: Any, token: int, index: int) -> np.ndarray:
        """Feed the ``index``-th generated code, → logits of the next."""
        raise NotImplementedError

    def semantic_condition(self, codes: np.ndarray, text_ids: np.ndarray, conditioning: Conditioning, frames: int) -> np.ndarray:
        """Codes → the flow model's condition for ``frames`` mel frames, [1, frames, 512]."""
        raise NotImplementedError

    def _velocity(self, x: np.ndarray, prompt_x: np.ndarray, t: np.ndarray, style: np.ndarray, cond: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def warm_up(self) -> None:
        for name in self._clips:
            self.conditioning(name)

    def conditioning(self, speaker: str | None) -> Conditioning:
        name = self.info.speakers[self.info.speaker_id(speaker)].name
        with self._lock:
            cached = self._conditioning.get(name)
            if cached is None:
                cached = self._load_or_compute(self._clips[name])
                self._conditioning[name] = cached
        return cached

    def _cache_salt(self) -> bytes:
        return f"{self.layout.name}/{FEATURES_VERSION}".encode()

    def _load_or_compute(self, clip: Path) -> Conditioning:
        digest = hashlib.sha256(clip.read_bytes() + self._cache_salt()).hexdigest()[:24]
        cache = self.info.path / "cache" / f"{clip.stem}-{digest}.npz"
        if cache.is_file():
            with np.load(cache) as data:
                return Conditioning(**{k: data[k] for k in Conditioning.__dataclass_fields__})
        self.conditioning_runs += 1
        result = self.analyse(*load_reference(clip))
        try:
            cache.parent.mkdir(exist_ok=True)
            np.savez(cache, **{k: getattr(result, k) for k in Conditioning.__dataclass_fields__})
        except OSError as err:
            _LOGGER.warning("Cannot cache the conditioning of %s (%s); it is recomputed at each start", clip, err)
        return result

    def text_segments(self, sentence: Sentence) -> list[np.ndarray]:
        """Token ids per segment of at most 120 tokens, cut after punctuation as upstream does."""
        language = text_language(sentence)
        text = self.prepare_text(sentence)
        if not text.strip():
            return []
        segments: list[str] = []
        for clause in re.split(r"(?<=[,.!?;:…])", text):
            if not clause:
                continue
            if segments and len(self.encode(segments[-1] + clause, language)) <= MAX_SEGMENT_TOKENS:
                segments[-1] += clause
            else:
                segments.append(clause)
        ids = [np.asarray([self.encode(s, language)], dtype=np.int64) for s in segments]
        return [i for i in ids if i.shape[1]]

    def text_ids(self, sentence: Sentence) -> np.ndarray:
        """All of one sentence's ids as one segment, for inspection and tests → [1, L]."""
        return np.asarray([self.encode(self.prepare_text(sentence), text_language(sentence))], np.int64)

    def generate_codes(self, text_ids: np.ndarray, conditioning: Conditioning, language: str, rng: np.random.Generator,
                       cancel: threading.Event) -> np.ndarray:
        """Prefill once, then one step per code with the KV cache, until the stop code or the cap.

        Upstream's generate() sees the start-of-text-stop and start-code ids as already "generated"
        (its input ids), so the repetition penalty covers them from the first code on.
        """
        logits, state = self._prefill(text_ids, conditioning, language)
        seen = {STOP_TEXT, START_CODE}
        codes: list[int] = []
        sampling = self.options.sampling
        for index in range(self.options.max_tokens):
            check_cancel(cancel)
            token = sample_token(logits, seen, sampling, rng)
            if token == STOP_CODE:
                break
            codes.append(token)
            seen.add(token)
            if index + 1 < self.options.max_tokens:
                logits = self._step(state, token, index)
        return np.asarray(codes, dtype=np.int64)

    def flow(self, condition: np.ndarray, conditioning: Conditioning, noise: np.ndarray, cancel: threading.Event) -> np.ndarray:
        return euler_flow(self._velocity, condition, conditioning.ref_mel, conditioning.style, noise,
                          self.options.steps, self.options.cfg_rate, cancel)

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        (audio,) = self._sessions["bigvgan"].run(None, {"mel": mel.astype(np.float32)})[:1]
        return audio.reshape(-1)[: mel.shape[-1] * HOP].astype(np.float32)

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        conditioning = self.conditioning(config.speaker)
        language = text_language(sentence)
        rng = np.random.default_rng(self.options.seed)
        spoken = False
        for text_ids in self.text_segments(sentence):
            codes = self.generate_codes(text_ids, conditioning, language, rng, cancel)
            if not len(codes):
                continue
            if spoken:  # upstream's pause between the segments of a long text
                yield np.zeros(int(SAMPLE_RATE * SEGMENT_PAUSE), np.float32)
            spoken = True
            check_cancel(cancel)
            frames = max(1, int(len(codes) * FRAMES_PER_CODE / max(0.25, config.speed)))
            condition = np.concatenate([conditioning.prompt_condition, self.semantic_condition(codes, text_ids, conditioning, frames)], axis=1)
            noise = rng.standard_normal((1, MEL_BINS, condition.shape[1]), dtype=np.float32)
            mel = self.flow(condition, conditioning, noise, cancel)
            check_cancel(cancel)
            yield np.clip(self.vocode(mel), -1.0, 1.0)

    def _cache_names(self, names: tuple[str, ...]) -> list[str]:
        """Every layer's cache tensor names, in (layer, key/value) order."""
        return [pattern.format(i=i) for i in range(self._layers) for pattern in names]

    def _feed(self, key: str, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The values a graph declares as inputs (optional ones only where it has them)."""
        return {name: value for name, value in values.items() if name in self._inputs[key]}


def _open_graph(root: Path, graph: Path, threads: int) -> ort.InferenceSession:
    try:
        return create_session(graph, threads)
    except Exception as err:  # onnxruntime raises its own exception types
        # Only on failure is the graph parsed a second time, to name absent weight files.
        absent = [str(p.relative_to(root)) for p in missing_weights(graph)]
        if absent:
            raise EngineError(f"{graph.relative_to(root)} keeps its weights in {', '.join(absent)}, which is missing or "
                              f"truncated (python -m wyoming_indextts.engines.indextts --check {root})") from err
        raise EngineError(f"{graph.relative_to(root)} cannot be loaded: {err}") from err


def missing_weights(graph: Path) -> list[Path]:
    """External-data files (``.onnx.data``) a graph refers to that are absent or too short."""
    return [path for path, size in external_data(graph) if not path.is_file() or path.stat().st_size < size]


def external_data(graph: Path) -> list[tuple[Path, int]]:
    """(file, bytes needed) for each external weight file of a graph, read without loading weights."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    needed: dict[str, int] = {}
    for tensor in _all_initializers(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entry = {e.key: e.value for e in tensor.external_data}
            end = int(entry.get("offset", 0)) + int(entry.get("length", 0))
            needed[entry["location"]] = max(needed.get(entry["location"], 0), end)
    return [(graph.parent / location, size) for location, size in sorted(needed.items())]


def _all_initializers(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.g is not None and attribute.g.ByteSize():
                yield from _all_initializers(attribute.g)
            for sub in attribute.graphs:
                yield from _all_initializers(sub)


class IndexTTSEngine(IndexTTSBase):
    """The IndexTTS-2.5 export; speakers are the clips in ``voices/*.wav``."""

    layout = LAYOUT

    def _load_text(self, root: Path) -> None:
        self._tokenizer = load_tiktoken(root / TOKENIZER_FILE)
        projection = np.load(root / SPEAKER_PROJECTION)
        self._projection_w = projection["weight"].astype(np.float32)
        self._projection_b = projection["bias"].astype(np.float32)

    def prepare_text(self, sentence: Sentence) -> str:
        """Punctuation mapped, lower-cased, our polyphone choices marked (``<|SPECIAL_TOKEN_2|>HANG2<|SPECIAL_TOKEN_2|>``)."""
        chinese = text_language(sentence) == "zh"
        text = sentence.normalized if chinese else spell_numbers(sentence.normalized)
        parts: list[str] = []
        start = 0
        for index, pinyin in sorted(pinyin_choices(sentence).items()):
            parts += [map_punctuation(text[start:index], chinese).lower(), f"{PINYIN_MARK}{pinyin}{PINYIN_MARK}"]
            start = index + 1
        parts.append(map_punctuation(text[start:], chinese).lower())
        return "".join(parts)

    def encode(self, text: str, language: str) -> list[int]:
        ids = self._tokenizer.encode(f"<|{language}|> " + text, allowed_special={f"<|{language}|>", PINYIN_MARK},
                                     disallowed_special=())
        # Ids 0 and 1 are the GPT's start/stop-of-text: upstream drops them from the text (the
        # byte tokens "!" and '"' that share those ids vanish with them).
        return [t for t in ids if t > STOP_TEXT]

    def analyse(self, audio_22k: np.ndarray, audio_16k: np.ndarray) -> Conditioning:
        s = self._sessions
        features, mask = self._features(audio_16k)
        (semantic,) = s["semantic_model"].run(None, {"input_features": features, "attention_mask": mask})[:1]
        (emotion,) = s["emo_vec"].run(None, {"feat": semantic, "ilens": np.array([semantic.shape[1]], np.int64)})[:1]
        (style,) = s["campplus"].run(None, {"fbank": campplus_fbank(audio_16k)})[:1]
        speaker = style @ self._projection_w.T + self._projection_b
        conds = np.concatenate([(speaker + emotion)[:, None, :], np.zeros((1, 2, speaker.shape[-1]), np.float32)], axis=1)
        ref_mel = reference_mel(audio_22k)
        (prompt,) = s["length_regulator"].run(None, {"x": semantic, "template": np.zeros((1, ref_mel.shape[-1], 1), np.float32)})[:1]
        return Conditioning(style.astype(np.float32), conds.astype(np.float32), prompt.astype(np.float32), ref_mel)

    def _prefill(self, text_ids: np.ndarray, conditioning: Conditioning, language: str) -> tuple[np.ndarray, Any]:
        names = self._cache_names(KV_OUT)
        outputs = self._sessions["gpt_prefill"].run(["logits", *names], {
            "text_ids": text_ids.astype(np.int64), "conds": conditioning.gpt_cond,
            "lang_id": np.array([_LANGUAGE_IDS[language]], np.int64)})
        return outputs[0][0], dict(zip(names, outputs[1:]))

    def _step(self, state: Any, token: int, index: int) -> np.ndarray:
        # The start code takes mel position 0 in the prefill and position 1 is never used:
        # upstream's quirk, which the export reproduces with pos_idx = index + 2.
        feeds = {"token": np.array([[token]], np.int64), "pos_idx": np.array([index + 2], np.int64)}
        names = list(state)
        feeds.update(zip(self._cache_names(KV_IN), state.values()))
        outputs = self._sessions["gpt_step"].run(["logits", *names], feeds)
        state.update(zip(names, outputs[1:]))
        return outputs[0][0]

    def semantic_condition(self, codes: np.ndarray, text_ids: np.ndarray, conditioning: Conditioning, frames: int) -> np.ndarray:
        (latent,) = self._sessions["codec_decode"].run(None, {"codes": codes[None]})[:1]
        (condition,) = self._sessions["length_regulator"].run(None, {"x": latent, "template": np.zeros((1, frames, 1), np.float32)})[:1]
        return condition.astype(np.float32)

    def _velocity(self, x: np.ndarray, prompt_x: np.ndarray, t: np.ndarray, style: np.ndarray, cond: np.ndarray) -> np.ndarray:
        return self._sessions["cfm"].run(None, {"x": x, "prompt_x": prompt_x, "x_lens": np.array([x.shape[-1]], np.int64),
                                                "t": t, "style": style, "cond": cond})[0]


def load_tiktoken(path: Path) -> "tiktoken.Encoding":
    tiktoken = require_extra("tiktoken")
    ranks = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    specials = {token: len(ranks) + i for i, token in enumerate(SPECIAL_TOKENS)}
    return tiktoken.Encoding(name=path.name, pat_str=_PAT, mergeable_ranks=ranks, special_tokens=specials,
                             explicit_n_vocab=len(ranks) + len(specials))


# -- opening a voice and checking an export ---------------------------------------------------


def layouts() -> tuple[Layout, ...]:
    from .indextts2 import LAYOUT as LAYOUT_2

    return (LAYOUT, LAYOUT_2)


def detect_layout(root: Path) -> Layout:
    for layout in layouts():
        if any((root / marker).exists() for marker in layout.marker):
            return layout
    names = " or ".join(f"{lay.name} ({', '.join(lay.marker)})" for lay in layouts())
    raise EngineError(f"{root} holds no IndexTTS export: expected the files of {names}")


def open_voice(info: VoiceInfo, threads: int = 1) -> IndexTTSBase:
    """The engine for the export layout found in the voice's folder."""
    if detect_layout(info.path) is LAYOUT:
        return IndexTTSEngine(info, threads)
    from .indextts2 import IndexTTS2Engine

    return IndexTTS2Engine(info, threads)


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warning", "error"
    subject: str
    message: str


def check_export(root: Path) -> tuple[Layout | None, list[Finding]]:
    """What a user needs to know before waiting for a multi-gigabyte load: per graph, missing files
    (weights included), wrong input/output names, dtypes or ranks; then the other files."""
    try:
        layout = detect_layout(root)
    except EngineError as err:
        return None, [Finding("error", str(root), str(err))]
    findings: list[Finding] = []
    for spec in layout.graphs:
        path = resolve_graph(root, spec)
        if path is None:
            names = " or ".join((*spec.variants, spec.path))
            findings.append(Finding("error", spec.path, f"missing ({names})"))
            continue
        subject = str(path.relative_to(root))
        try:
            inputs, outputs = _proto_signature(path)
            weights = external_data(path)
        except Exception as err:  # noqa: BLE001 — any parse failure is the finding
            findings.append(Finding("error", subject, f"cannot be read as ONNX: {err}"))
            continue
        for data, size in weights:
            rel = str(data.relative_to(root)) if data.is_relative_to(root) else str(data)
            if not data.is_file():
                findings.append(Finding("error", rel, f"missing: {subject} keeps {size / 1e6:.0f} MB of its weights there"))
            elif data.stat().st_size < size:
                findings.append(Finding("error", rel, f"truncated: {data.stat().st_size} bytes, {subject} needs {size}"))
        errors, warnings = compare_signature(spec, inputs, outputs)
        findings += [Finding("error", subject, e) for e in errors] + [Finding("warning", subject, w) for w in warnings]
        if not errors:
            size = path.stat().st_size + sum(s for _, s in weights)
            findings.append(Finding("ok", subject, f"{_describe(inputs)} → {_describe(outputs)}, {size / 1e6:.0f} MB"))
    findings += _check_files(root, layout)
    return layout, findings


def _describe(tensors: Sequence[TensorInfo]) -> str:
    shown = [t for t in tensors if "kv" not in t.name and "present" not in t.name and "past" not in t.name]
    hidden = len(tensors) - len(shown)
    text = ", ".join(f"{t.name}:{t.dtype}/{t.rank}" for t in shown)
    return text + (f" + {hidden} KV-cache tensors" if hidden else "")


def _proto_signature(path: Path) -> tuple[list[TensorInfo], list[TensorInfo]]:
    import onnx
    from onnx import helper

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}

    def info(values: Any) -> list[TensorInfo]:
        out = []
        for v in values:
            if v.name in weights:
                continue
            tensor = v.type.tensor_type
            out.append(TensorInfo(v.name, np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name,
                                  len(tensor.shape.dim)))
        return out

    return info(graph.input), info(graph.output)


def _check_files(root: Path, layout: Layout) -> list[Finding]:
    findings: list[Finding] = []
    if layout is LAYOUT:
        findings.append(_check_tokenizer(root / TOKENIZER_FILE))
        findings.append(_check_projection(root / SPEAKER_PROJECTION))
        config = root / "hf_cache/w2v-bert-2.0/preprocessor_config.json"
        if not config.is_file():  # part of the published 2.5 download, not of the IndexTTS-2 one
            findings.append(Finding("warning", str(config.relative_to(root)), "absent: w2v-bert-2.0's published settings are used"))
    else:
        from .indextts2 import check_bpe

        findings.append(check_bpe(root))
    clips = sorted((root / "voices").glob("*.wav"))
    findings.append(Finding("ok", "voices/", f"{len(clips)} reference clips: {', '.join(c.stem for c in clips)}") if clips else
                    Finding("error", "voices/", "no reference clip (voices/NAME.wav, a few seconds of clean speech)"))
    return findings


def _check_tokenizer(path: Path) -> Finding:
    if not path.is_file():
        return Finding("error", path.name, "missing")
    try:
        encoding = load_tiktoken(path)
        mark = encoding.encode_single_token(PINYIN_MARK)
    except (EngineError, ValueError, KeyError) as err:
        return Finding("error", path.name, f"unusable: {err}")
    return Finding("ok", path.name, f"{encoding.n_vocab - len(SPECIAL_TOKENS)} tokens + {len(SPECIAL_TOKENS)} special "
                   f"({PINYIN_MARK} = {mark})")


def _check_projection(path: Path) -> Finding:
    if not path.is_file():
        return Finding("error", path.name, "missing")
    try:
        with np.load(path) as data:
            weight, bias = data["weight"].shape, data["bias"].shape
    except (OSError, ValueError, KeyError) as err:
        return Finding("error", path.name, f"unusable: {err}")
    if len(weight) != 2 or bias != (weight[0],) or weight[1] != 192:
        return Finding("error", path.name, f"weight {weight}, bias {bias}: expected [1280, 192] and [1280]")
    return Finding("ok", path.name, f"weight {weight}, bias {bias}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wyoming_indextts.engines.indextts",
                                     description="Check an IndexTTS ONNX export folder before loading it.")
    parser.add_argument("--check", type=Path, required=True, metavar="DIR", help="the voice folder")
    args = parser.parse_args(argv)
    layout, findings = check_export(args.check)
    print(f"{layout.name if layout else 'Unknown'} export in {args.check}")
    for finding in findings:
        print(f"  {finding.level.upper():8} {finding.subject}: {finding.message}")
    errors = sum(f.level == "error" for f in findings)
    print(f"{errors} problem(s)" if errors else "No problems found.")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
