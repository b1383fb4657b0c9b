"""The shared layer piece by piece, against a real redis-server: the cache's values, an
outage, the job record's publish-once rule, the jobs API's answers, the worker's flags."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import numpy as np
import pytest
import redis

from conftest import REPO, free_port
from local_server import catalog_from
from scale_cluster import RedisServer, start_redis
from wyoming_indextts.audio import float_to_pcm16
from wyoming_indextts.cache import PhraseCache
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.scale import jobs
from wyoming_indextts.scale.cache import SharedPhraseCache, decode_audio, encode_audio
from wyoming_indextts.scale.store import RedisUnavailable, SharedStore
from wyoming_indextts.server.http import HttpDoor, HttpSettings
from wyoming_indextts.synthesis import SynthesisSettings, Synthesizer, VoiceRequest
from wyoming_indextts.voices import VoiceCatalog


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def catalog() -> VoiceCatalog:
    return catalog_from([REPO / "models"], "zh_CN-baker")


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[SharedStore]:
    redis.Redis.from_url(redis_server.url).flushdb()
    shared = SharedStore(redis_server.url, retry_seconds=0.5)
    yield shared
    shared.close()


def _wait(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_cached_values_are_compressed_and_give_back_the_same_16_bit_audio() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(48000) / 24000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    audio[:10] = [1.0, -1.0, 0.99999, -0.99999, 1.5, -1.5, 0.0, 1e-6, -1e-6, 0.5]  # edges and clipping
    data = encode_audio(audio)
    assert len(data) < audio.nbytes / 2
    assert float_to_pcm16(decode_audio(data)) == float_to_pcm16(audio)


async def test_a_phrase_one_synthesizer_made_is_a_hit_for_another(catalog: VoiceCatalog, store: SharedStore) -> None:
    first = Synthesizer(catalog, Frontend(), SynthesisSettings(), SharedPhraseCache(PhraseCache(1 << 24), store))
    second = Synthesizer(catalog, Frontend(), SynthesisSettings(), SharedPhraseCache(PhraseCache(1 << 24), store))
    try:
        voice = first.resolve_voice(VoiceRequest())
        made = np.concatenate([c.samples async for c in first.stream("车库的门已经关上了。", voice)])
        keys = first.cache_stats().misses
        client = redis.Redis.from_url(store.url)
        _wait(lambda: sum(1 for _ in client.scan_iter("indextts:cache:*")) == keys)
        heard = np.concatenate([c.samples async for c in second.stream("车库的门已经关上了。", voice)])
        stats = second.cache_stats()
        assert stats.shared_hits == keys and stats.misses == 0 and stats.hits == keys
        assert float_to_pcm16(heard) == float_to_pcm16(made)
        assert all(0 < client.ttl(k) <= 30 * 24 * 3600 for k in client.scan_iter("indextts:cache:*"))  # evictable under volatile-lru
    finally:
        first.close()
        second.close()


async def test_redis_gone_means_local_only_with_a_count_and_quickly(redis_server: RedisServer, tmp_path: Path) -> None:
    port = free_port()
    dead = SharedStore(f"redis://127.0.0.1:{port}/0", retry_seconds=60)
    try:
        cache = SharedPhraseCache(PhraseCache(1 << 20), dead)
        started = time.monotonic()
        assert await cache.fetch("k") is None
        cache.put("k", np.ones(100, np.float32))  # kept locally; the write to Redis fails quietly
        assert await cache.fetch("k") is not None
        for _ in range(20):
            assert await cache.fetch("other") is None
        assert time.monotonic() - started < 2.0
        stats = dead.stats()
        assert not stats.up and stats.outages == 1 and stats.errors >= 1 and stats.skipped >= 20  # tried once, then left alone
        with pytest.raises(RedisUnavailable):
            dead.run("probe", lambda client: client.ping())
    finally:
        dead.close()


async def test_sharing_resumes_when_redis_is_back(tmp_path: Path) -> None:
    server = RedisServer(free_port(), tmp_path)
    store = SharedStore(server.url, retry_seconds=0.2)
    try:
        with pytest.raises(RedisUnavailable):
            await store.call("probe", lambda client: client.ping())
        server.start()
        await asyncio.sleep(0.3)
        assert await store.call("probe", lambda client: client.ping())
        assert store.stats().up and store.stats().outages == 1
    finally:
        store.close()
        server.stop()


def _record(client: redis.Redis, job_id: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(jobs.job_key(job_id)).items()}


async def test_a_job_is_published_once_and_a_lost_run_goes_back_on_the_queue(store: SharedStore) -> None:
    queue = jobs.JobQueue(store, max_queued=5)
    client = redis.Redis.from_url(store.url)
    job_id = await queue.enqueue(jobs.JobRequest(texts=("你好。",)))
    assert (await queue.status(job_id))["state"] == "queued"
    assert client.eval(jobs._START, 1, jobs.job_key(job_id), time.time(), "w1") is not None
    # The worker died: RQ calls back with a retry left → queued again, the attempt counted.
    jobs.job_lost(SimpleNamespace(id=job_id, retries_left=1), client, RuntimeError, None, None)
    status = await queue.status(job_id)
    assert status["state"] == "queued" and status["attempt"] == 1
    assert client.eval(jobs._START, 1, jobs.job_key(job_id), time.time(), "w2") is not None
    assert await jobs._finish(store, jobs.job_key(job_id), "finished", "audio_urls", '["/static/audio/a.wav"]', "duration", 1.0)
    # A second run that also finishes (a slow worker presumed dead) is not published.
    assert not await jobs._finish(store, jobs.job_key(job_id), "finished", "audio_urls", '["/static/audio/b.wav"]', "duration", 1.0)
    status = await queue.status(job_id)
    assert status["state"] == "finished" and status["audio_url"] == "/static/audio/a.wav" and status["attempt"] == 2
    assert int(client.get(jobs.FINISHED_COUNTER)) == 1
    # No run starts a finished job again.
    assert client.eval(jobs._START, 1, jobs.job_key(job_id), time.time(), "w3") is None
    # Out of retries: the client is told it failed.
    other = await queue.enqueue(jobs.JobRequest(texts=("再见。",)))
    client.eval(jobs._START, 1, jobs.job_key(other), time.time(), "w1")
    jobs.job_lost(SimpleNamespace(id=other, retries_left=0), client, RuntimeError, None, None)
    failed = await queue.status(other)
    assert failed["state"] == "failed" and failed["code"] == "job-lost"


async def test_the_queue_refuses_past_its_limit(store: SharedStore) -> None:
    queue = jobs.JobQueue(store, max_queued=3)
    for _ in range(3):
        await queue.enqueue(jobs.JobRequest(texts=("一。",)))
    with pytest.raises(jobs.QueueFull) as refused:
        await queue.enqueue(jobs.JobRequest(texts=("二。",)))
    assert refused.value.retry_after >= 1
    stats = await queue.stats()
    assert stats.queued == 3 and stats.oldest_queued_age >= 0 and stats.workers == 0


@pytest.fixture
async def door(catalog: VoiceCatalog, store: SharedStore) -> AsyncIterator[int]:
    synthesizer = Synthesizer(catalog, Frontend(), SynthesisSettings(max_text_chars=200))
    port = free_port()
    http = HttpDoor(synthesizer, HttpSettings(port=port, max_jobs_queued=10), store)
    await http.start()
    yield port
    await http.stop()
    synthesizer.close()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": ""}, 400, "empty-text"),
        ({"text": "好" * 201}, 413, "text-too-long"),
        ({"text": "你好。", "voice": "nobody"}, 404, "unknown-voice"),
        ({"text": "你好。", "speed": 9}, 400, "bad-speed"),
        ({"texts": []}, 400, "bad-field"),
        ({"texts": "你好。"}, 400, "bad-field"),
        ({"texts": ["好。"] * 101}, 400, "bad-field"),
        ({"texts": ["好。", 3]}, 400, "bad-field"),
        ({"text": "你好。", "format": "flac"}, 400, "bad-format"),
    ],
)
async def test_bad_jobs_are_refused_with_the_rules_of_a_synthesis(door: int, body: dict, status: int, code: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"http://127.0.0.1:{door}/api/tts/jobs", json=body) as response:
        assert response.status == status
        assert (await response.json())["code"] == code


async def test_a_batch_job_answers_at_once_and_unknown_jobs_are_404(door: int) -> None:
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        async with session.post(f"http://127.0.0.1:{door}/api/tts/jobs", json={"texts": ["一号。", "二号。"], "format": "mp3"}) as response:
            assert response.status == 202
            body = await response.json()
        assert time.monotonic() - started < 1.0
        async with session.get(f"http://127.0.0.1:{door}{body['status_url']}") as response:
            status = await response.json()
        assert status["state"] == "queued" and status["texts"] == 2 and status["attempt"] == 0
        for job_id in ("0" * 32, "../etc"):
            async with session.get(f"http://127.0.0.1:{door}/api/tts/jobs/{job_id}") as response:
                assert response.status == 404


async def test_without_redis_the_jobs_api_says_how_to_turn_it_on(catalog: VoiceCatalog) -> None:
    synthesizer = Synthesizer(catalog, Frontend())
    port = free_port()
    http = HttpDoor(synthesizer, HttpSettings(port=port))
    await http.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/api/tts/jobs", json={"text": "你好。"}) as response:
                assert response.status == 404
                assert "--redis-url" in (await response.json())["error"]
            async with session.get(f"http://127.0.0.1:{port}/health") as response:
                assert "redis" not in await response.json()
    finally:
        await http.stop()
        synthesizer.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["worker"], "the worker needs --redis-url"),
        (["worker", "--redis-url", "http://x"], "--redis-url"),
        (["--redis-url", "ftp://x"], "--redis-url"),
    ],
)
def test_bad_scale_flags_are_plain_errors(argv: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "wyoming_indextts", *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
