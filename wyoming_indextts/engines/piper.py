"""Piper (VITS) voices through the ``piper-tts`` runtime Home Assistant's Piper uses.

A Piper voice is ``NAME.onnx`` plus ``NAME.onnx.json``. Piper phonemizes with its bundled
espeak-ng and yields one audio chunk per sentence it finds. We build the ``PiperVoice``
ourselves around a session from :func:`wyoming_indextts.onnx.create_session`, because
``PiperVoice.load`` opens its session with default options (no graph-optimisation level,
no thread limit), which the project's CPU rules forbid.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING

import numpy as np

from ..cache import cache_key, model_cache_dir, write_atomically
from ..frontend import Sentence, Span
from ..onnx import create_session
from .base import EngineError, Speaker, SynthesisConfig, VoiceInfo, check_cancel, windows

if TYPE_CHECKING:
    from piper.config import SynthesisConfig as PiperSynthesisConfig

_LOGGER = logging.getLogger(__name__)

CONFIG_SUFFIX = ".onnx.json"

# Piper exports name the VITS decoder's first layer /dec/conv_pre; its input is the latent z
# [1, 192, frames]. Cutting the graph there lets the decoder (HiFi-GAN, most of the work) run
# in windows, so the first audio leaves after the encoder and one small window.
DECODER_FIRST_NODE = "/dec/conv_pre/Conv"
# Measured on en_US-joe-medium by perturbing single latent frames: a frame changes the output
# at most 11 frames away, so 16 frames of context on each side give the one-shot samples.
DECODER_CONTEXT_FRAMES = 16
FIRST_WINDOW_FRAMES = 16
# Later windows: HiFi-GAN's activations grow with the window (its last layers hold
# 32 channels x 256 samples per frame, several at once), and ONNX Runtime's arena keeps the
# largest working set for good. Measured alone, 256 frames (+32 of context) grew the arena by
# 83 MB per worker, 192 by 43 MB, 128 by 33 MB; in the soak (2 workers) 128 ended ~24 MB below
# 192. The price is context: 32 extra frames per 128 instead of per 256, ~5-10 % more decoder
# work on long sentences; the first window, and so first audio, is unchanged.
MAX_WINDOW_FRAMES = 128


# Bump when split_vits writes different graphs for the same model: old cache entries are then ignored.
SPLIT_FORMAT = 1


@dataclass(frozen=True)
class SplitVits:
    """The two halves of a Piper graph: files in the split cache, or serialized models in memory."""

    encoder: Path | bytes
    decoder: Path | bytes
    latent: str


def split_vits(model: Path) -> SplitVits | None:
    """Encoder and decoder graphs of a single-speaker Piper voice, or None when it can't be split
    (no ``onnx`` package, an unfamiliar export, or a speaker-conditioned decoder)."""
    try:
        import onnx
        from onnx.utils import Extractor
    except ImportError:
        return None
    try:
        graph = onnx.load(str(model))
    except Exception as err:  # noqa: BLE001 — a broken file is reported by ONNX Runtime's own load below
        _LOGGER.debug("Cannot read %s to split it: %s", model, err)
        return None
    node = next((n for n in graph.graph.node if n.name == DECODER_FIRST_NODE), None)
    inputs = [i.name for i in graph.graph.input]
    if node is None or "sid" in inputs:
        return None
    extractor = Extractor(graph)
    encoder = extractor.extract_model(inputs, [node.input[0]])
    decoder = extractor.extract_model([node.input[0]], [o.name for o in graph.graph.output])
    return SplitVits(encoder.SerializeToString(), decoder.SerializeToString(), node.input[0])


def _split_cache_folder(model: Path, cache_dir: Path) -> Path:
    """One folder per model file version: the same path, size and mtime give the same split
    (hashing 60 MB at every start would cost more than the split saves)."""
    stat = model.stat()
    key = cache_key(str(model.resolve()), stat.st_size, stat.st_mtime_ns, DECODER_FIRST_NODE, SPLIT_FORMAT)
    return cache_dir / "piper-split" / f"{model.name.removesuffix('.onnx')}-{key[:16]}"


def split_vits_cached(model: Path, cache_dir: Path | None) -> SplitVits | None:
    """:func:`split_vits`, kept on disk in ``cache_dir`` so later starts skip it.

    Splitting loads the whole graph with ``onnx`` and copies it twice (about 3x the model's
    size, ~270 MB for a medium voice) and the freed heap mostly stays with the process;
    sessions opened from the cached files never see that. A folder that cannot be written
    falls back to the split in memory, as before.
    """
    if cache_dir is None:
        return split_vits(model)
    try:
        folder = _split_cache_folder(model, cache_dir)
    except OSError:  # the model file cannot be read: ONNX Runtime will say why
        return split_vits(model)
    try:
        manifest = json.loads((folder / "split.json").read_text(encoding="utf-8"))
        if manifest.get("latent") is None:
            return None  # known not to split: don't load the graph again to find that out
        encoder, decoder = folder / "encoder.onnx", folder / "decoder.onnx"
        if encoder.is_file() and decoder.is_file():
            return SplitVits(encoder, decoder, str(manifest["latent"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no (usable) cache entry yet
    split = split_vits(model)
    if split is None and importlib.util.find_spec("onnx") is None:
        return None  # only onnx is missing: nothing to remember about this model
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if split is not None:
            for name, data in (("encoder.onnx", split.encoder), ("decoder.onnx", split.decoder)):
                assert isinstance(data, bytes)
                write_atomically(folder / name, data)
        # Written last: its presence says the graphs beside it are complete.
        write_atomically(folder / "split.json", json.dumps({"latent": split.latent if split else None}).encode())
    except OSError as err:
        _LOGGER.warning("Cannot cache the split graphs of %s in %s (%s); splitting at every start", model.name, cache_dir, err)
        return split
    _remove_older_splits(folder)
    if split is None:
        return None
    _LOGGER.info("Split %s into encoder and decoder, cached in %s", model.name, folder)
    return SplitVits(folder / "encoder.onnx", folder / "decoder.onnx", split.latent)


def _remove_older_splits(current: Path) -> None:
    """Entries of earlier versions of the same model file are ~60 MB each and never read again."""
    stem, _, key = current.name.rpartition("-")
    for entry in current.parent.glob(f"{stem}-*"):
        other = entry.name[len(stem) + 1 :]
        if entry != current and len(other) == len(key) and all(c in "0123456789abcdef" for c in other):
            shutil.rmtree(entry, ignore_errors=True)


def piper_voice_info(model: Path, config: Path | None = None, **overrides: Any) -> VoiceInfo:
    """Read a Piper ``.onnx.json`` into our voice description (the model itself is not opened)."""
    config = config or model.with_name(model.name + ".json")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        language = data.get("language") or {}
        code = str(language.get("code") or "")
        if not code:  # older voices only name their espeak voice, e.g. "en-us"
            espeak = str((data.get("espeak") or {}).get("voice", ""))
            code = espeak.replace("-", "_")
        family = str(language.get("family") or code.split("_")[0])
        languages = tuple(dict.fromkeys(x for x in (code, family) if x))
        speaker_map: dict[str, int] = {str(k): int(v) for k, v in (data.get("speaker_id_map") or {}).items()}
        num_speakers = int(data.get("num_speakers", 1))
        if num_speakers > 1 and not speaker_map:
            speaker_map = {str(i): i for i in range(num_speakers)}
        speakers = tuple(Speaker(name, sid) for name, sid in sorted(speaker_map.items(), key=lambda kv: kv[1]))
        quality = str((data.get("audio") or {}).get("quality", ""))
        dataset = str(data.get("dataset", ""))
        return VoiceInfo(
            name=overrides.get("name") or model.name.removesuffix(".onnx"),
            engine="piper",
            languages=languages,
            sample_rate=int(data["audio"]["sample_rate"]),
            path=model,
            description=overrides.get("description")
            or f"Piper VITS voice{' ' + dataset if dataset else ''}{' (' + quality + ')' if quality else ''}",
            version=str(data.get("piper_version", "")),
            license=overrides.get("license", ""),
            attribution_name=overrides.get("attribution_name", "Piper"),
            attribution_url=overrides.get("attribution_url", "https://github.com/OHF-Voice/piper1-gpl"),
            speakers=speakers,
            files={"model": model.name, "config": str(config)},
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise EngineError(f"{config}: not a usable Piper voice config: {err}") from err


class PiperEngine:
    """Thread-safe: the ORT session allows concurrent runs, and piper guards its espeak phonemizer."""

    def __init__(self, info: VoiceInfo, threads: int = 1, cache_dir: Path | None = None) -> None:
        """``cache_dir`` keeps the split graphs (default :func:`model_cache_dir`)."""
        try:
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as err:
            raise EngineError("Piper voices need the piper-tts package") from err
        self.info = info
        config_path = Path(info.files.get("config") or str(info.path) + ".json")
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise EngineError(f"{config_path}: {err}") from err
        self._multi_speaker = config.num_speakers > 1
        self._length_scale = float(config.length_scale)
        self._noise_scale = float(config.noise_scale)
        self._noise_w_scale = float(config.noise_w_scale)
        split = split_vits_cached(info.path, cache_dir or model_cache_dir())
        self._encoder = create_session(split.encoder, threads) if split else None
        self._decoder = create_session(split.decoder, threads) if split else None
        self._latent = split.latent if split else ""
        if split is None:
            _LOGGER.info("Voice %s is synthesized a sentence at a time (its graph could not be split)", info.name)
        # When split, PiperVoice only phonemizes; loading the whole graph as well would hold the
        # weights in memory twice, so it gets the encoder session, which it never runs.
        session = self._encoder if self._encoder is not None else create_session(info.path, threads)
        self._voice = PiperVoice(session=session, config=config)

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def _config(self, config: SynthesisConfig) -> "PiperSynthesisConfig":
        from piper.config import SynthesisConfig as PiperSynthesisConfig

        speed = max(0.25, min(4.0, config.speed))
        return PiperSynthesisConfig(
            speaker_id=self.info.speaker_id(config.speaker) if self._multi_speaker else None,
            # Piper scales phoneme durations: a smaller length_scale is faster speech.
            length_scale=self._length_scale / speed,
            # Piper's default scales every sentence to full scale: the level would jump from
            # sentence to sentence and spliced English would be ~4 dB louder than the Chinese
            # voice. The model's own level is close to the other voices'.
            normalize_audio=False,
        )

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        text = " ".join(span.text.strip() for span in sentence.spans if span.text.strip())
        if not text:
            return
        check_cancel(cancel)
        if self._encoder is None or self._decoder is None:
            for chunk in self._voice.synthesize(text, self._config(config)):
                yield chunk.audio_float_array
                check_cancel(cancel)
            return
        length_scale = self._length_scale / max(0.25, min(4.0, config.speed))
        scales = np.array([self._noise_scale, length_scale, self._noise_w_scale], dtype=np.float32)
        for phonemes in self._voice.phonemize(text):
            ids = np.array([self._voice.phonemes_to_ids(phonemes)], dtype=np.int64)
            (latent,) = self._encoder.run(None, {"input": ids, "input_lengths": np.array([ids.shape[1]], np.int64), "scales": scales})
            check_cancel(cancel)
            yield from self.decode_windows(latent, cancel)

    def decode(self, latent: np.ndarray) -> np.ndarray:
        assert self._decoder is not None
        (audio,) = self._decoder.run(None, {self._latent: latent})
        return np.clip(audio.reshape(-1), -1.0, 1.0).astype(np.float32, copy=False)

    def decode_windows(self, latent: np.ndarray, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        """The decoder over windows of the latent, each with enough context to equal one-shot output."""
        for w in windows(latent.shape[2], DECODER_CONTEXT_FRAMES, FIRST_WINDOW_FRAMES, MAX_WINDOW_FRAMES):
            audio = self.decode(latent[:, :, w.left : w.right])
            hop = len(audio) // (w.right - w.left)
            yield audio[(w.start - w.left) * hop : (w.end - w.left) * hop]
            if cancel is not None:
                check_cancel(cancel)

    def warm_up(self) -> None:
        for _ in self.synthesize(Sentence("Hi.", "Hi.", (Span("en", "Hi."),)), SynthesisConfig(), threading.Event()):
            pass
