"""The HTTP door's generated audio files in Redis, so any replica serves any ``audio_url``.

A file is one Redis string under its generated name, with the door's ``--http-max-age`` as
its expiry (Redis removes it; no replica has to clean up). Files of asynchronous jobs are
written the same way by the workers.
"""

from __future__ import annotations

from .store import PREFIX, SharedStore


class SharedAudioFiles:
    def __init__(self, store: SharedStore, max_age: float) -> None:
        self.store = store
        self.max_age_ms = max(1000, int(max_age * 1000))

    @staticmethod
    def redis_key(name: str) -> str:
        return f"{PREFIX}audio:{name}"

    async def save(self, name: str, data: bytes) -> None:
        """Raises ``RedisUnavailable``: the caller keeps the file on its own disk instead."""
        await self.store.call("audio file write", lambda client: client.set(self.redis_key(name), data, px=self.max_age_ms))

    def save_now(self, name: str, data: bytes) -> None:
        """:meth:`save`, blocking (a worker thread)."""
        self.store.run("audio file write", lambda client: client.set(self.redis_key(name), data, px=self.max_age_ms))

    async def load(self, name: str) -> bytes | None:
        """Raises ``RedisUnavailable``."""
        data = await self.store.call("audio file read", lambda client: client.get(self.redis_key(name)))
        return bytes(data) if data is not None else None

    def delete_now(self, *names: str) -> None:
        if names:
            self.store.run("audio file delete", lambda client: client.delete(*(self.redis_key(n) for n in names)))
