"""A real Wyoming server on a loopback port, run in the test's own event loop.

Used where a test must look inside the server after talking to it (failure counters),
or must give it voices no subprocess could load (an engine that stalls on purpose).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from wyoming.server import AsyncServer

from conftest import free_port
from wyoming_indextts.engines.base import Engine
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.server.wyoming import WyomingSettings, handler_factory
from wyoming_indextts.synthesis import SynthesisSettings, Synthesizer
from wyoming_indextts.voices import VoiceCatalog, discover_voices


@dataclass
class LocalServer:
    port: int
    synthesizer: Synthesizer


def catalog_from(folders: Sequence[Path], default_voice: str | None = None) -> VoiceCatalog:
    discovery = discover_voices(folders)
    return VoiceCatalog.load(discovery.voices, 1, default_voice, discovery.failures)


@contextlib.asynccontextmanager
async def serve(
    catalog: VoiceCatalog, settings: SynthesisSettings = SynthesisSettings(), extra: Sequence[Engine] = ()
) -> AsyncIterator[LocalServer]:
    if extra:
        catalog = VoiceCatalog([*extra, *catalog.engines], catalog.failures, catalog.default_voice)
    synthesizer = Synthesizer(catalog, Frontend(), settings)
    port = free_port()
    server = AsyncServer.from_uri(f"tcp://127.0.0.1:{port}")
    await server.start(handler_factory(synthesizer, WyomingSettings()))
    try:
        yield LocalServer(port, synthesizer)
    finally:
        await server.stop()
        synthesizer.close()
