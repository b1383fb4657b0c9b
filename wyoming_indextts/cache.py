"""Phrase cache: synthesized sentences kept by everything that changes their sound.

Announcements repeat ("The front door is open", 「洗衣机的衣服已经洗好了」), so the article's
advice is to cache them. Entries are whole sentences at the stream's rate; the key covers
the voice and its version, speaker, speed, rate and the front end's full reading (so a new
lexicon entry or a front-end change never serves stale audio).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    entries: int
    bytes: int
    persistent: bool
    shared: bool = False
    """Backed by Redis (``--redis-url``): a phrase any replica synthesized is a hit here."""
    shared_hits: int = 0
    """Of ``hits``, those answered by Redis rather than this process."""
    shared_writes_dropped: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class AudioCache(Protocol):
    """What the synthesizer needs of a phrase cache: this module's, or the shared one
    (scale/cache.py) that puts Redis behind it."""

    @property
    def enabled(self) -> bool: ...

    async def fetch(self, key: str) -> np.ndarray | None: ...

    def put(self, key: str, audio: np.ndarray) -> None: ...

    def stats(self) -> CacheStats: ...


def model_cache_dir() -> Path:
    """Where files derived from models are kept (e.g. Piper's split graphs):
    ``$XDG_CACHE_HOME/wyoming-indextts``, else ``~/.cache/wyoming-indextts``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wyoming-indextts"


def replace_cached_file(path: Path, data: bytes, stale: str) -> OSError | None:
    """Write ``data`` to ``path`` (making its folder) and delete the files beside it that match
    ``stale``: built from earlier sources (another version, another install), they would never be
    read again. The error where the cache cannot be written (the caller keeps ``data`` itself)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
    except OSError as err:
        return err
    for entry in path.parent.glob(stale):
        if entry != path:
            entry.unlink(missing_ok=True)
    return None


def write_atomically(path: Path, data: bytes) -> None:
    """Another server starting at the same time never reads a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cache_key(*parts: object) -> str:
    """A stable digest of the parts (JSON-encoded, so types matter: 1.0 ≠ "1.0")."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


class PhraseCache:
    """LRU cache bounded in bytes, optionally mirrored to a folder. Thread-safe.

    A folder that cannot be written (missing, read-only, disk full) switches persistence
    off with one warning; the in-memory cache and synthesis go on.
    """

    def __init__(self, max_bytes: int, folder: Path | None = None) -> None:
        self.max_bytes = max(0, max_bytes)
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()
        self._folder: Path | None = None
        if folder is not None and self.max_bytes:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / ".write-test"
                probe.write_bytes(b"")
                probe.unlink()
                self._folder = folder
            except OSError as err:
                _LOGGER.warning("Cache folder %s is not usable (%s); caching in memory only", folder, err)

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, key: str) -> np.ndarray | None:
        if not self.enabled:
            return None
        with self._lock:
            audio = self._entries.get(key)
            if audio is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return audio
        audio = self._load(key)
        with self._lock:
            if audio is None:
                self._misses += 1
                return None
            self._hits += 1
            self._insert(key, audio)
        return audio

    async def fetch(self, key: str) -> np.ndarray | None:
        """The lookup the synthesizer makes; the shared cache (scale/cache.py) may wait on Redis here."""
        return self.get(key)

    def put(self, key: str, audio: np.ndarray) -> None:
        if not self.enabled or audio.nbytes > self.max_bytes:
            return
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        audio.setflags(write=False)
        with self._lock:
            self._insert(key, audio)
        self._save(key, audio)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries), self._bytes, self._folder is not None)

    def _insert(self, key: str, audio: np.ndarray) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._entries[key] = audio
        self._bytes += audio.nbytes
        while self._bytes > self.max_bytes and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes

    # -- the folder ------------------------------------------------------------------

    def _path(self, key: str) -> Path | None:
        return self._folder / f"{key}.npy" if self._folder is not None else None

    def _load(self, key: str) -> np.ndarray | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            audio = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            _LOGGER.warning("Unreadable cache file %s (%s); ignored", path, err)
            return None
        if audio.dtype != np.float32 or audio.ndim != 1:
            return None
        os.utime(path)  # recently used: the folder is trimmed oldest-first
        audio.setflags(write=False)
        return audio

    def _save(self, key: str, audio: np.ndarray) -> None:
        path = self._path(key)
        if path is None:
            return
        temporary = path.with_suffix(".tmp")
        try:
            with temporary.open("wb") as handle:
                np.save(handle, audio, allow_pickle=False)
            temporary.replace(path)
            self._trim_folder()
        except OSError as err:
            _LOGGER.warning("Cannot write the cache folder %s (%s); caching in memory only from now on", self._folder, err)
            self._folder = None
            temporary.unlink(missing_ok=True)

    def _trim_folder(self) -> None:
        """Keep the folder within the same byte bound, dropping the least recently used files."""
        assert self._folder is not None
        files = [(p.stat().st_mtime, p.stat().st_size, p) for p in self._folder.glob("*.npy")]
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
