"""Voice catalogue: find voice manifests, load each voice once, resolve requests to a voice."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .engines import Engine, load_engine
from .engines.base import Speaker, VoiceInfo

_LOGGER = logging.getLogger(__name__)

MANIFEST = "voice.json"


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


def _language_keys(language: str) -> list[str]:
    """``zh-CN`` → [zh_cn, zh]; ``cmn`` counts as ``zh``."""
    lang = language.replace("-", "_").lower()
    keys = [lang, lang.split("_")[0]]
    return [("zh" if k == "cmn" else k) for k in keys]


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
    def load(cls, infos: Iterable[VoiceInfo], threads: int = 1, default_voice: str | None = None) -> "VoiceCatalog":
        """Load and warm every voice; a voice that fails is logged and left out, never fatal."""
        engines: list[Engine] = []
        failures: list[LoadFailure] = []
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
        """The first loaded voice that lists the language, exact region before bare language."""
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
