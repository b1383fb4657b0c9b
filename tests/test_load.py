"""Phrase cache, admission (busy), and cancellation when a client leaves."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from conftest import REPO, ServerProcess, exchange, start_server, stop_server
from local_server import catalog_from
from wyoming_indextts.cache import PhraseCache
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.synthesis import BusyError, SynthesisSettings, Synthesizer, VoiceRequest
from wyoming_indextts.voices import VoiceCatalog

LONG = "客厅温度二十三度，湿度百分之六十，空气质量良好。今晚会有小雨，出门记得带伞。" * 8


@pytest.fixture(scope="module")
def catalog() -> VoiceCatalog:
    return catalog_from([REPO / "models"], "zh_CN-baker")


async def _audio(synthesizer: Synthesizer, text: str, speed: float | None = None) -> np.ndarray:
    voice = synthesizer.resolve_voice(VoiceRequest())
    return np.concatenate([chunk.samples async for chunk in synthesizer.stream(text, voice, speed)])


async def test_cache_hit_returns_identical_audio(catalog: VoiceCatalog) -> None:
    synthesizer = Synthesizer(catalog, Frontend(), SynthesisSettings(cache_mb=8))
    try:
        first = await _audio(synthesizer, "洗衣机的衣服已经洗好了。")
        assert synthesizer.cache_stats().misses == 1 and synthesizer.cache_stats().hits == 0
        second = await _audio(synthesizer, "洗衣机的衣服已经洗好了。")
        assert synthesizer.cache_stats().hits == 1
        assert np.array_equal(first, second)
        faster = await _audio(synthesizer, "洗衣机的衣服已经洗好了。", speed=1.5)
        assert synthesizer.cache_stats().hits == 1  # speed is part of the key
        assert len(faster) < len(first)
    finally:
        synthesizer.close()


async def test_cache_persists_across_restarts(catalog: VoiceCatalog, tmp_path: Path) -> None:
    settings = SynthesisSettings(cache_mb=8, cache_dir=tmp_path / "cache")
    first_run = Synthesizer(catalog, Frontend(), settings)
    try:
        audio = await _audio(first_run, "前门有人按了门铃。")
    finally:
        first_run.close()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    second_run = Synthesizer(catalog, Frontend(), settings)
    try:
        again = await _audio(second_run, "前门有人按了门铃。")
        assert second_run.cache_stats().hits == 1
        assert np.array_equal(audio, again)
    finally:
        second_run.close()


def test_cache_is_bounded_in_bytes_and_evicts_least_recently_used() -> None:
    cache = PhraseCache(max_bytes=3 * 4000)
    for name in "abc":
        cache.put(name, np.zeros(1000, np.float32))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", np.zeros(1000, np.float32))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("d") is not None
    assert cache.stats().bytes <= 3 * 4000
    cache.put("huge", np.zeros(10_000, np.float32))  # larger than the whole cache: not kept
    assert cache.get("huge") is None


def test_unwritable_cache_folder_falls_back_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    cache = PhraseCache(max_bytes=1 << 20, folder=blocker / "cache")
    cache.put("k", np.ones(10, np.float32))
    assert cache.get("k") is not None
    assert not cache.stats().persistent


async def test_preload_fills_the_cache(catalog: VoiceCatalog) -> None:
    synthesizer = Synthesizer(catalog, Frontend(), SynthesisSettings(cache_mb=8))
    try:
        voice = synthesizer.resolve_voice(VoiceRequest())
        added = await synthesizer.preload(["车库的门已经关上了。", "", "# a comment", "扫地机器人已经回到充电座了。"], voice)
        assert added == 2
        await _audio(synthesizer, "车库的门已经关上了。")
        assert synthesizer.cache_stats().hits == 1
    finally:
        synthesizer.close()


async def test_admission_refuses_when_workers_and_queue_are_full(catalog: VoiceCatalog) -> None:
    synthesizer = Synthesizer(catalog, Frontend(), SynthesisSettings(max_workers=1, max_queue=1))
    try:
        with synthesizer.admit(), synthesizer.admit():
            assert synthesizer.queue_length == 1
            with pytest.raises(BusyError), synthesizer.admit():
                pass
        with synthesizer.admit():  # places are given back
            assert synthesizer.active_requests == 1
    finally:
        synthesizer.close()


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    server = start_server(tmp_path_factory.mktemp("tight"), "--max-workers", "1", "--max-queue", "0", "--cache-mb", "0")
    yield server
    stop_server(server)


async def test_full_server_answers_busy_at_once(tight_server: ServerProcess) -> None:
    busy = asyncio.create_task(exchange(tight_server.port, Synthesize(text=LONG).event()))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    refused = await exchange(tight_server.port, Synthesize(text="你好。").event())
    assert refused.types == ["error"]
    assert refused.events[0].data["code"] == "busy"
    assert time.monotonic() - started < 1.0
    assert (await busy).types[-1] == "audio-stop"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime in clock ticks


async def test_client_leaving_cancels_its_work(tight_server: ServerProcess) -> None:
    client = AsyncTcpClient("127.0.0.1", tight_server.port)
    await client.connect()
    await client.write_event(Synthesize(text=LONG * 3).event())
    while (event := await client.read_event()) is not None and event.type != "audio-chunk":
        pass
    await client.disconnect()
    await asyncio.sleep(0.5)  # at most the sentence in progress finishes
    before = _cpu_seconds(tight_server.process.pid)
    await asyncio.sleep(1.0)
    used = _cpu_seconds(tight_server.process.pid) - before
    # Synthesizing the rest would keep a core busy for seconds; an idle server uses ~nothing.
    assert used < 0.2, f"server used {used:.2f} s of CPU after the client left"
    # and the single worker is free again
    received = await exchange(tight_server.port, Synthesize(text="你好。").event())
    assert received.types[-1] == "audio-stop"
