"""Memory: Piper's split graphs cached on disk, glibc heap helpers, ORT session memory options."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from piper_voices import write_piper_voice
from wyoming_indextts import memory
from wyoming_indextts.engines import piper
from wyoming_indextts.engines.piper import PiperEngine, split_vits_cached
from wyoming_indextts.onnx import create_session
from wyoming_indextts.voices import discover_voices


@pytest.fixture(scope="module")
def joe_info():  # type: ignore[no-untyped-def]
    [info] = [v for v in discover_voices([], espeak=False).voices if v.name == "en_US-joe-medium"]
    return info


@pytest.fixture(scope="module")
def latent() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((1, 192, 120)).astype(np.float32)


def _no_split(model: Path) -> None:
    raise AssertionError(f"{model} was split again instead of read from the cache")


def test_split_graphs_are_cached_and_reused_with_identical_audio(
    tmp_path: Path, joe_info, latent: np.ndarray, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    in_memory = split_vits_cached(joe_info.path, None)
    assert in_memory is not None and isinstance(in_memory.encoder, bytes)
    reference = PiperEngine(joe_info, 1, cache_dir=tmp_path)  # cache miss: splits and writes
    [folder] = (tmp_path / "piper-split").iterdir()
    assert {p.name for p in folder.iterdir()} == {"encoder.onnx", "decoder.onnx", "split.json"}
    assert (folder / "decoder.onnx").read_bytes() == in_memory.decoder
    assert (folder / "encoder.onnx").read_bytes() == in_memory.encoder

    monkeypatch.setattr(piper, "split_vits", _no_split)
    cached = PiperEngine(joe_info, 1, cache_dir=tmp_path)  # cache hit: never calls split_vits
    assert cached._latent == in_memory.latent
    from_bytes = create_session(in_memory.decoder, 1)
    (expected,) = from_bytes.run(None, {in_memory.latent: latent})
    np.testing.assert_array_equal(cached.decode(latent), np.clip(expected.reshape(-1), -1, 1))
    np.testing.assert_array_equal(cached.decode(latent), reference.decode(latent))


def test_unwritable_cache_folder_splits_in_memory(tmp_path: Path, joe_info, latent: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    engine = PiperEngine(joe_info, 1, cache_dir=blocker / "cache")
    assert engine._encoder is not None and engine._decoder is not None
    assert blocker.is_file()
    reference = PiperEngine(joe_info, 1, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(engine.decode(latent), reference.decode(latent))


def test_a_voice_that_cannot_be_split_is_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = write_piper_voice(tmp_path / "voices", "tiny")
    assert split_vits_cached(model, tmp_path / "cache") is None
    [folder] = (tmp_path / "cache" / "piper-split").iterdir()
    assert [p.name for p in folder.iterdir()] == ["split.json"]
    monkeypatch.setattr(piper, "split_vits", _no_split)
    assert split_vits_cached(model, tmp_path / "cache") is None


def test_a_changed_model_gets_a_new_cache_entry_and_the_old_one_goes(tmp_path: Path) -> None:
    model = write_piper_voice(tmp_path / "voices", "tiny")
    split_vits_cached(model, tmp_path / "cache")
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    [old] = (tmp_path / "cache" / "piper-split").iterdir()
    split_vits_cached(model, tmp_path / "cache")
    [new] = (tmp_path / "cache" / "piper-split").iterdir()  # the old version's entry is gone
    assert new != old and (new / "split.json").is_file()


def test_heap_helpers_are_no_ops_off_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    memory._glibc.cache_clear()
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("", ""))
    try:
        assert memory._glibc() is None
        assert memory.trim() is False
        assert memory.limit_arenas(2) is False
    finally:
        memory._glibc.cache_clear()


@pytest.mark.skipif(memory._glibc() is None, reason="glibc only")
def test_heap_helpers_work_on_glibc() -> None:
    assert isinstance(memory.trim(), bool)
    assert memory.limit_arenas(0) is False  # 0 would mean "no limit": refused, not passed on


def test_sessions_use_the_shared_arena_without_memory_patterns(joe_info) -> None:  # type: ignore[no-untyped-def]
    split = split_vits_cached(joe_info.path, None)
    assert split is not None
    options = create_session(split.decoder, 1).get_session_options()
    assert options.enable_mem_pattern is False
    assert options.get_session_config_entry("session.use_env_allocators") == "1"


def test_server_limits_glibc_arenas_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    import wyoming_indextts.__main__ as cli

    calls: list[int] = []

    async def no_server() -> None:
        return None

    monkeypatch.setattr(cli, "main", no_server)
    monkeypatch.setattr(cli, "_exit_when_workers_stop", lambda seconds: None)
    monkeypatch.setattr(cli, "limit_arenas", lambda count: calls.append(count) or True)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    cli.run()
    assert calls == [cli.MALLOC_ARENAS]
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    cli.run()
    assert calls == [cli.MALLOC_ARENAS]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_releasing_memory_returns_the_arenas_working_set(joe_info) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    from wyoming_indextts.synthesis import release_memory

    # Two decoder runs at once on long latents grow the shared arena well past what idling needs.
    engine = PiperEngine(joe_info, 1)
    big = np.random.default_rng(3).standard_normal((1, 192, 600)).astype(np.float32)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: engine._decoder.run(None, {engine._latent: big}), range(4)))
    before = _rss_mb()
    release_memory()
    after = _rss_mb()
    assert before - after > 20, (before, after)


async def test_an_idle_synthesizer_releases_memory_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from wyoming_indextts import synthesis
    from wyoming_indextts.frontend import Frontend
    from wyoming_indextts.voices import VoiceCatalog

    released: list[float] = []
    monkeypatch.setattr(synthesis, "release_memory", lambda: released.append(1.0))
    catalog = VoiceCatalog([])
    synthesizer = synthesis.Synthesizer(catalog, Frontend(), synthesis.SynthesisSettings(release_after_idle=0.2))
    try:
        with synthesizer.admit():
            with synthesizer.admit():
                pass
            await asyncio.sleep(0.4)
            assert released == []  # a request is still in progress
        await asyncio.sleep(0.1)
        with synthesizer.admit():  # a new request before the delay: the pending release is off
            await asyncio.sleep(0.3)
        assert released == []
        await asyncio.sleep(0.5)
        assert released == [1.0]  # idle for the whole delay: released once
        await asyncio.sleep(0.4)
        assert released == [1.0]
    finally:
        synthesizer.close()
    never = synthesis.Synthesizer(catalog, Frontend(), synthesis.SynthesisSettings(release_after_idle=None))
    try:
        with never.admit():
            pass
        await asyncio.sleep(0.1)
        assert never._release_timer is None
    finally:
        never.close()


def test_arena_probe_is_a_one_node_identity_model() -> None:
    import onnx
    from importlib import resources

    model = onnx.load_from_string((resources.files("wyoming_indextts") / "data" / "arena_probe.onnx").read_bytes())
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Identity"]
    assert [i.name for i in model.graph.input] == ["x"] and [o.name for o in model.graph.output] == ["y"]
