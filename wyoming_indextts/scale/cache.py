"""The phrase cache shared by every replica: Redis behind each replica's own cache.

Keys are the content-addressed keys of ``cache.py`` (everything that changes the sound), so
a sentence one replica synthesized is a hit on every other. Values are FLAC-compressed 16-bit
PCM — what every door sends anyway — about a third of the float32 bytes (measured on speech,
docs/SCALING.md); they are restored so that 16-bit output is bit for bit what the first
replica sent. Entries carry a TTL, so Redis' ``volatile-lru`` eviction bounds the cache's
size while queued jobs, which carry none, are never evicted (deploy/redis.conf).

Lookups go to this replica's cache first, then Redis; a Redis hit is kept locally. Writes to
Redis happen in the store's threads after the audio was sent, never holding a request. When
Redis fails, lookups and writes simply stay local (store.py).
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import replace

import numpy as np
import soundfile as sf

from ..cache import CacheStats, PhraseCache
from .store import PREFIX, RedisUnavailable, SharedStore

_LOGGER = logging.getLogger(__name__)

CACHE_TTL_SECONDS = 30 * 24 * 3600
"""Unused entries leave after a month even without memory pressure."""
MAX_PENDING_WRITES = 64
"""Writes waiting for Redis beyond this are dropped (a slow Redis must not pile up audio in memory)."""
_FLAC_RATE = 48000  # FLAC needs a rate; the key already holds the real one


def encode_audio(audio: np.ndarray) -> bytes:
    """float32 audio → FLAC of the 16-bit PCM every door would send."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, pcm, _FLAC_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def decode_audio(data: bytes) -> np.ndarray:
    """The inverse of :func:`encode_audio`, placed half a step from zero so that
    ``audio.float_to_pcm16`` (which truncates) gives back exactly the same samples."""
    pcm, _ = sf.read(io.BytesIO(data), dtype="int16")
    audio = (pcm.astype(np.float32) + np.sign(pcm).astype(np.float32) * 0.5) / 32767.0
    audio.setflags(write=False)
    return audio


class SharedPhraseCache:
    """The synthesizer's cache (``get``/``fetch``/``put``/``stats``) with Redis behind it."""

    def __init__(self, local: PhraseCache, store: SharedStore) -> None:
        self.local = local
        self.store = store
        self._lock = threading.Lock()
        self._shared_hits = 0
        self._pending = 0
        self._dropped = 0

    @property
    def enabled(self) -> bool:
        return self.local.enabled

    @staticmethod
    def redis_key(key: str) -> str:
        return f"{PREFIX}cache:{key}"

    def get(self, key: str) -> np.ndarray | None:
        """This replica's cache only (no waiting on the network)."""
        return self.local.get(key)

    async def fetch(self, key: str) -> np.ndarray | None:
        audio = self.local.get(key)
        if audio is not None or not self.enabled:
            return audio

        def load(client: object) -> np.ndarray | None:
            data = client.get(self.redis_key(key))  # type: ignore[attr-defined]
            return None if data is None else decode_audio(data)

        try:
            audio = await self.store.call("cache lookup", load)
        except RedisUnavailable:
            return None
        except (RuntimeError, ValueError) as err:  # soundfile: not FLAC (a foreign or damaged value)
            _LOGGER.warning("Unreadable shared cache entry %s (%s); ignored", key[:12], err)
            return None
        if audio is None:
            return None
        with self._lock:
            self._shared_hits += 1
        self.local.put(key, audio)
        return audio

    def put(self, key: str, audio: np.ndarray) -> None:
        if not self.enabled:
            return
        self.local.put(key, audio)
        with self._lock:
            if self._pending >= MAX_PENDING_WRITES:
                self._dropped += 1
                return
            self._pending += 1
        self.store.submit("cache write", lambda client: client.set(self.redis_key(key), encode_audio(audio), ex=CACHE_TTL_SECONDS),
                          done=self._written)

    def _written(self) -> None:
        with self._lock:
            self._pending -= 1

    def stats(self) -> CacheStats:
        local = self.local.stats()
        with self._lock:
            shared_hits, dropped = self._shared_hits, self._dropped
        # The local cache counted a miss for every lookup Redis then answered.
        return replace(local, hits=local.hits + shared_hits, misses=local.misses - shared_hits,
                       shared=True, shared_hits=shared_hits, shared_writes_dropped=dropped)
