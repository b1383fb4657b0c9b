"""Model folders as the sherpa-onnx releases publish them: which family, which files, and what
the ONNX metadata and graph say, checked the way sherpa-onnx itself reads them.

Supported (Chinese-speaking) families and their folders:

* ``matcha``: ``model-steps-N.onnx`` (acoustic model → mel; metadata ``jieba=1``), ``tokens.txt``,
  ``lexicon.txt``, and a vocoder downloaded separately (``vocos-22khz-univ.onnx``,
  ``hifigan_v2.onnx``, …; metadata ``model_type`` ``vocos`` or ``hifigan``);
* ``vits``: MeloTTS exports (``comment`` ``melo``, ``jieba=1``, version ≥ 2): ``model.onnx``
  with a ``tones`` input, ``tokens.txt``, ``lexicon.txt``;
* ``kokoro``: multi-language exports (version ≥ 2): ``model.onnx``, ``voices.bin`` (one style
  table per speaker), ``tokens.txt``, ``lexicon-zh.txt``, ``lexicon-us-en.txt`` (and
  ``espeak-ng-data/``, which we do not need: words outside the lexicon go through piper-tts's
  espeak-ng).

Reading metadata loads the graph with ``onnx`` (weights included); the install command writes
what it found into ``voice.json`` so that the server does not pay for that at every start.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .base import EngineError, Speaker, VoiceInfo

if TYPE_CHECKING:
    import onnxruntime as ort

_LOGGER = logging.getLogger(__name__)

FAMILIES = ("matcha", "vits", "kokoro")
VOCODER_TYPES = {"hifigan": "hifigan", "vocos": "vocos", "matcha-tts vocos": "vocos"}
# What sherpa-onnx refuses to load a model without (SHERPA_ONNX_READ_META_DATA without default).
REQUIRED_METADATA = {
    "matcha": ("sample_rate", "n_speakers", "use_eos_bos", "pad_id"),
    "vits": ("sample_rate", "n_speakers", "language", "comment"),
    "kokoro": ("sample_rate", "n_speakers", "has_espeak", "style_dim"),
}
_STEPS = re.compile(r"^model-steps-(\d+)(\.int8)?\.onnx$")


class ModelFolderError(EngineError):
    """A folder that is not (or not yet) a usable model: the message says what is missing."""


@dataclass(frozen=True)
class Graph:
    """What an ONNX file declares, read without running it."""

    path: Path
    metadata: dict[str, str]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def int(self, key: str, default: int | None = None) -> int:
        value = self.metadata.get(key)
        if value is None:
            if default is None:
                raise ModelFolderError(f"{self.path.name}: metadata has no {key!r}")
            return default
        try:
            return int(value)
        except ValueError:
            raise ModelFolderError(f"{self.path.name}: metadata {key}={value!r} is not a number") from None


def session_graph(path: Path, session: "ort.InferenceSession") -> Graph:
    """The same facts from a loaded session (engines: the graph is not parsed twice)."""
    return Graph(
        path,
        dict(session.get_modelmeta().custom_metadata_map),
        tuple(i.name for i in session.get_inputs()),
        tuple(o.name for o in session.get_outputs()),
    )


def read_graph(path: Path) -> Graph:
    try:
        import onnx
    except ImportError as err:  # a runtime dependency; only a broken install lacks it
        raise ModelFolderError("Reading model folders needs the onnx package") from err
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 — any parse failure means the same to the user
        raise ModelFolderError(f"{path}: not a readable ONNX model ({type(err).__name__}: {err})") from err
    initializers = {i.name for i in model.graph.initializer}
    return Graph(
        path,
        {p.key: p.value for p in model.metadata_props},
        tuple(i.name for i in model.graph.input if i.name not in initializers),
        tuple(o.name for o in model.graph.output),
    )


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder: everything an engine of ``family`` needs, found."""

    path: Path
    family: str
    model: Graph
    tokens: Path
    lexicons: tuple[Path, ...] = ()
    vocoder: Graph | None = None
    voices: Path | None = None
    notes: tuple[str, ...] = field(default=())
    """Things worth telling the user that do not stop the voice from loading."""

    @property
    def metadata(self) -> dict[str, str]:
        return self.model.metadata


def _model_candidates(folder: Path) -> list[Path]:
    """The acoustic/VITS/Kokoro graph files, best first: full precision before int8, Matcha's
    3-step solver (the release's documented default) before the others."""
    found = sorted(folder.glob("*.onnx"))

    def rank(path: Path) -> tuple[int, int, str]:
        name = path.name
        steps = _STEPS.match(name)
        if steps:
            return (1 if steps.group(2) else 0, abs(int(steps.group(1)) - 3), name)
        if name == "model.onnx":
            return (0, 0, name)
        if name.startswith("model") and name.endswith(".onnx"):
            return (1, 0, name)
        return (2, 0, name)

    return sorted(found, key=rank)


def _family(graph: Graph, folder: Path) -> str | None:
    model_type = graph.metadata.get("model_type", "").lower()
    comment = graph.metadata.get("comment", "").lower()
    if model_type in VOCODER_TYPES:
        return None
    if model_type == "kokoro" or (folder / "voices.bin").is_file():
        return "kokoro"
    if model_type.startswith("matcha") or _STEPS.match(graph.path.name):
        return "matcha"
    if "vits" in model_type or "melo" in comment or "piper" in comment or "icefall" in comment:
        return "vits"
    return None


def looks_like_model_folder(folder: Path) -> bool:
    """Cheap test used by discovery: a tokens.txt beside an ONNX model."""
    return (folder / "tokens.txt").is_file() and any(folder.glob("*.onnx"))


def inspect_folder(folder: Path, vocoder: Path | None = None) -> ModelFolder:
    """Find and check a model folder's parts; raises :class:`ModelFolderError` saying what is
    missing or unsupported."""
    if not folder.is_dir():
        raise ModelFolderError(f"{folder} is not a folder")
    tokens = folder / "tokens.txt"
    if not tokens.is_file():
        raise ModelFolderError(f"{folder}: no tokens.txt (is this a sherpa-onnx TTS model folder?)")
    model: Graph | None = None
    family: str | None = None
    vocoders: list[Graph] = []
    for candidate in _model_candidates(folder):
        graph = read_graph(candidate)
        kind = _family(graph, folder)
        if kind is None and graph.metadata.get("model_type", "").lower() in VOCODER_TYPES:
            vocoders.append(graph)
        elif kind is not None and model is None:
            model, family = graph, kind
    if model is None or family is None:
        raise ModelFolderError(f"{folder}: no TTS model among its .onnx files (looked for Matcha, MeloTTS VITS and Kokoro metadata)")
    missing = [key for key in REQUIRED_METADATA[family] if key not in model.metadata]
    if missing:
        raise ModelFolderError(f"{model.path}: the ONNX metadata lacks {', '.join(missing)} (sherpa-onnx needs them too; re-download the model)")
    check = {"matcha": _check_matcha, "vits": _check_vits, "kokoro": _check_kokoro}[family]
    # Vocos before HiFi-GAN when both are there: the better of the two (sherpa-onnx's own example).
    vocoders.sort(key=lambda v: VOCODER_TYPES[v.metadata["model_type"].lower()] != "vocos")
    if vocoder is not None:
        vocoders.insert(0, read_graph(vocoder))
    return check(folder, model, tokens, vocoders)


def _lexicon(folder: Path, *names: str) -> tuple[Path, ...]:
    found = tuple(folder / name for name in names if (folder / name).is_file())
    if not found:
        raise ModelFolderError(f"{folder}: no {' or '.join(names)}")
    return found


def _check_inputs(graph: Graph, expected: tuple[str, ...], what: str) -> None:
    if len(graph.inputs) < len(expected):
        raise ModelFolderError(
            f"{graph.path.name}: a {what} has the inputs {', '.join(expected)}; this one has {', '.join(graph.inputs) or 'none'}"
        )


def _check_matcha(folder: Path, model: Graph, tokens: Path, vocoders: list[Graph]) -> ModelFolder:
    voice = model.metadata.get("voice", "")
    if model.int("jieba", 0) != 1 and voice != "zh en-us":
        raise ModelFolderError(
            f"{model.path.name}: a Matcha model without a Chinese lexicon (jieba=0); only the Chinese Matcha voices are "
            "supported (English ones read through espeak-ng: use a Piper voice instead)"
        )
    _check_inputs(model, ("x", "x_length", "noise_scale", "length_scale"), "Matcha acoustic model")
    if len(model.outputs) != 1:
        raise ModelFolderError(f"{model.path.name}: expected one output (mel), found {', '.join(model.outputs)}")
    lexicons = _lexicon(folder, "lexicon.txt")
    if model.outputs[0] == "audio_output":
        return ModelFolder(folder, "matcha", model, tokens, lexicons)
    if not vocoders:
        raise ModelFolderError(
            f"{folder}: a Matcha acoustic model needs a vocoder: download one from sherpa-onnx's vocoder-models release "
            "(vocos-22khz-univ.onnx, or hifigan_v2.onnx for speed) and pass it with --vocoder, or put it in the folder"
        )
    vocoder = vocoders[0]
    kind = VOCODER_TYPES.get(vocoder.metadata.get("model_type", "").lower())
    if kind is None:
        raise ModelFolderError(f"{vocoder.path.name}: not a vocoder sherpa-onnx publishes (metadata model_type must be vocos or hifigan)")
    rate = vocoder.metadata.get("sample_rate")
    if rate is not None and rate != model.metadata["sample_rate"]:
        raise ModelFolderError(f"{vocoder.path.name} is a {rate} Hz vocoder; {model.path.name} makes {model.metadata['sample_rate']} Hz mels")
    if kind == "vocos":
        expected = len(vocoder.outputs) == 3
        if not expected or vocoder.int("n_fft", 1024) != vocoder.int("win_length", 1024):
            raise ModelFolderError(f"{vocoder.path.name}: a Vocos vocoder has three outputs (mag, x, y) and win_length == n_fft")
    return ModelFolder(folder, "matcha", model, tokens, lexicons, vocoder)


def _check_vits(folder: Path, model: Graph, tokens: Path, vocoders: list[Graph]) -> ModelFolder:
    comment = model.metadata.get("comment", "")
    if "melo" not in comment or model.int("jieba", 0) != 1:
        raise ModelFolderError(
            f"{model.path.name}: only MeloTTS Chinese+English VITS models are supported (comment 'melo', jieba=1); "
            f"this one says comment={comment!r}"
        )
    if model.int("version", 0) < 2:
        raise ModelFolderError(f"{model.path.name}: a MeloTTS export of version < 2; download the current vits-melo-tts-zh_en")
    _check_inputs(model, ("x", "x_lengths", "tones", "sid", "noise_scale", "length_scale", "noise_scale_w"), "MeloTTS model")
    return ModelFolder(folder, "vits", model, tokens, _lexicon(folder, "lexicon.txt"))


def _check_kokoro(folder: Path, model: Graph, tokens: Path, vocoders: list[Graph]) -> ModelFolder:
    if model.int("version", 1) < 2:
        raise ModelFolderError(f"{model.path.name}: an English-only Kokoro (version 1); use kokoro-multi-lang-v1_0 or v1_1 for Chinese")
    _check_inputs(model, ("tokens", "style", "speed"), "Kokoro model")
    try:
        style = [int(x) for x in model.metadata["style_dim"].split(",")]
    except ValueError:
        raise ModelFolderError(f"{model.path.name}: metadata style_dim={model.metadata['style_dim']!r} is not a list of numbers") from None
    if len(style) != 3 or style[1] != 1:
        raise ModelFolderError(f"{model.path.name}: style_dim must be three numbers with 1 in the middle, got {style}")
    voices = folder / "voices.bin"
    if not voices.is_file():
        raise ModelFolderError(f"{folder}: no voices.bin (the speakers' style tables)")
    expected = math.prod(style) * model.int("n_speakers") * 4
    if voices.stat().st_size != expected:
        raise ModelFolderError(
            f"{voices}: {voices.stat().st_size} bytes, expected {expected} ({model.int('n_speakers')} speakers × {style} float32)"
        )
    chinese = _lexicon(folder, "lexicon-zh.txt", "lexicon.txt")[:1]
    english = tuple(p for p in (folder / "lexicon-us-en.txt", folder / "lexicon-gb-en.txt") if p.is_file())[:1]
    return ModelFolder(folder, "kokoro", model, tokens, chinese + english, voices=voices)


def speakers(folder: ModelFolder) -> tuple[Speaker, ...]:
    count = folder.model.int("n_speakers", 1)
    names = [n for n in folder.metadata.get("speaker_names", "").split(",") if n]
    if len(names) == count:
        return tuple(Speaker(name, i) for i, name in enumerate(names))
    if folder.family == "vits" or count <= 1:
        return ()  # MeloTTS fixes its speaker in the metadata
    return tuple(Speaker(str(i), i) for i in range(count))


def languages(folder: ModelFolder) -> tuple[str, ...]:
    if folder.family == "matcha" and folder.metadata.get("voice") != "zh en-us":
        return ("zh_CN", "zh")
    return ("zh_CN", "zh", "en_US", "en")


# What the releases' model cards say where the ONNX metadata names no licence.
_LICENCES = {
    "matcha": "Apache-2.0 (icefall recipe)",
    "vits": "MIT (MeloTTS)",
    "kokoro": "Apache-2.0 (Kokoro-82M)",
}
_DESCRIPTIONS = {
    "matcha": "Matcha-TTS (sherpa-onnx release) with {vocoder} vocoder",
    "vits": "MeloTTS VITS Chinese+English (sherpa-onnx release)",
    "kokoro": "Kokoro multi-language, {count} speakers (sherpa-onnx release)",
}


def describe(folder: ModelFolder, name: str | None = None) -> VoiceInfo:
    """The voice this folder is, as our catalogue lists it (``files`` relative to the folder)."""
    meta = folder.metadata
    files: dict[str, str] = {"model": _relative(folder.model.path, folder.path), "tokens": folder.tokens.name,
                             "lexicon": ",".join(p.name for p in folder.lexicons)}
    if folder.vocoder is not None:
        files["vocoder"] = _relative(folder.vocoder.path, folder.path)
    if folder.voices is not None:
        files["voices"] = folder.voices.name
    vocoder_kind = VOCODER_TYPES.get(folder.vocoder.metadata.get("model_type", "").lower(), "") if folder.vocoder else ""
    licence = "; ".join(x for x in (meta.get("license", "") or _LICENCES[folder.family], meta.get("dataset_comment", "")) if x)
    return VoiceInfo(
        name=name or folder.path.name,
        engine=folder.family,
        languages=languages(folder),
        sample_rate=folder.model.int("sample_rate"),
        path=folder.path,
        description=_DESCRIPTIONS[folder.family].format(vocoder=vocoder_kind or "its own", count=folder.model.int("n_speakers", 1)),
        version=meta.get("version", ""),
        license=licence,
        attribution_name=meta.get("model_author", "") or meta.get("maintainer", "") or "sherpa-onnx",
        attribution_url=meta.get("url", "") or meta.get("model_url", "") or "https://github.com/k2-fsa/sherpa-onnx/releases/tag/tts-models",
        speakers=speakers(folder),
        files=files,
    )


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)
