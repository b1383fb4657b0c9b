"""The Redis connection every shared piece uses, and what an outage does to it.

Redis is a help, never a requirement for speaking: a call that fails (refused, timed out,
Redis stopped) is logged once per outage, counted, and reported to the caller as "not
available", which falls back to what the replica has locally. After a failure Redis is left
alone for ``retry_seconds``, so an outage costs one short timeout now and then, not one per
request.

Calls are blocking (redis-py), so the event loop hands them to a small thread pool of their
own (``call``): a Redis that hangs can hold those threads, never the loop or the synthesis
workers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import redis

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "indextts:"
"""Every key we write starts with this (RQ's own keys start with ``rq:``)."""


class RedisUnavailable(Exception):
    """Redis did not answer (or is being left alone after a failure): use the local fallback."""


@dataclass(frozen=True)
class StoreStats:
    up: bool
    errors: int
    """Calls that failed since start."""
    outages: int
    """Times Redis went from answering to failing."""
    skipped: int
    """Calls not even tried because Redis had just failed."""


class SharedStore:
    """One Redis (``--redis-url``) for the phrase cache, audio files and the job queue."""

    def __init__(self, url: str, timeout: float = 0.5, retry_seconds: float = 3.0, threads: int = 4) -> None:
        import redis  # the [redis] extra; only imported when --redis-url is given

        self.url = url
        # Short timeouts: a cache lookup that waits longer than a synthesis is worth nothing.
        self.client: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
        )
        self._errors_caught: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._retry_seconds = retry_seconds
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="redis")
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._errors = 0
        self._outages = 0
        self._skipped = 0

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    @property
    def up(self) -> bool:
        with self._lock:
            return self._down_since is None

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(self._down_since is None, self._errors, self._outages, self._skipped)

    def run(self, operation: str, call: Callable[["redis.Redis"], T]) -> T:
        """``call(client)`` here and now (blocking); raises :class:`RedisUnavailable` on any failure."""
        with self._lock:
            if self._down_since is not None and time.monotonic() < self._retry_at:
                self._skipped += 1
                raise RedisUnavailable(f"Redis is unavailable (since {time.monotonic() - self._down_since:.0f} s)")
        try:
            result = call(self.client)
        except self._errors_caught as err:
            self._failed(operation, err)
            raise RedisUnavailable(f"Redis {operation} failed: {err}") from err
        with self._lock:
            if self._down_since is not None:
                _LOGGER.warning("Redis at %s answers again after %.1f s; sharing resumes", self.url, time.monotonic() - self._down_since)
                self._down_since = None
        return result

    async def call(self, operation: str, call: Callable[["redis.Redis"], T]) -> T:
        """:meth:`run` in the store's own threads, for the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.run, operation, call)

    def submit(self, operation: str, call: Callable[["redis.Redis"], object], done: Callable[[], None] | None = None) -> None:
        """:meth:`run` in the store's threads without waiting for it (a write nobody waits on)."""

        def task() -> None:
            try:
                self.run(operation, call)
            except RedisUnavailable:
                pass  # counted and logged by run(); the local copy stays
            except Exception:  # noqa: BLE001 — a background write must never take a thread down silently
                _LOGGER.exception("Redis %s failed unexpectedly", operation)
            finally:
                if done is not None:
                    done()

        try:
            self._executor.submit(task)
        except RuntimeError:  # shutting down
            if done is not None:
                done()

    def _failed(self, operation: str, err: BaseException) -> None:
        with self._lock:
            self._errors += 1
            self._retry_at = time.monotonic() + self._retry_seconds
            if self._down_since is None:
                self._down_since = time.monotonic()
                self._outages += 1
                _LOGGER.warning(
                    "Redis at %s failed (%s: %s on %s); serving from this replica alone until it answers again",
                    self.url, type(err).__name__, err, operation,
                )
