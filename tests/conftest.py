"""Shared fixtures: a real server process on a loopback port, and a Wyoming client helper."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe

# Miniature model folders of sherpa-onnx's releases, built once per session (tests/sherpa_fixtures.py).
from sherpa_fixtures import sherpa_folders  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Files derived from models (Piper's split graphs) go to a folder of this test session,
    also for the servers the tests start, not into the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("model-cache")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_server(
    tmp_dir: Path, *extra_args: str, timeout: float = 60.0, command: Sequence[str] = (sys.executable, "-m", "wyoming_indextts"), cwd: Path = REPO,
) -> ServerProcess:
    """Start ``python -m wyoming_indextts`` (or another ``command``) and wait until it answers ``describe``."""
    port = free_port()
    log_path = tmp_dir / f"server-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*command, "--uri", f"tcp://127.0.0.1:{port}", *extra_args],
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b'{"type": "describe"}\n')
                sock.settimeout(2)
                if b'"info"' in sock.recv(4096):
                    return ServerProcess(port, process, log_path)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not start in {timeout} s:\n{log_path.read_text()}")


def stop_server(server: ServerProcess) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with the default voices for the whole session (loading voices takes seconds)."""
    proc = start_server(tmp_path_factory.mktemp("server"))
    yield proc
    stop_server(proc)


@dataclass
class Received:
    """Everything a client got back for one request."""

    events: list[Event] = field(default_factory=list)

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]

    @property
    def pcm(self) -> bytes:
        """The audio chunks' payloads, joined: 16-bit mono PCM at :attr:`rate`."""
        return b"".join(e.payload or b"" for e in self.events if e.type == "audio-chunk")

    @property
    def audio(self) -> np.ndarray:
        return np.frombuffer(self.pcm, dtype="<i2").astype(np.float32) / 32768.0

    @property
    def rate(self) -> int:
        start = next(e for e in self.events if e.type == "audio-start")
        return int(start.data["rate"])

    @property
    def duration(self) -> float:
        return len(self.audio) / self.rate

    def first(self, event_type: str) -> Event:
        return next(e for e in self.events if e.type == event_type)


async def exchange(port: int, *events: Event, until: tuple[str, ...] = ("audio-stop", "error"), timeout: float = 60.0) -> Received:
    """Send events on a fresh connection and collect replies until one of ``until`` arrives."""
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    received = Received()
    try:
        for event in events:
            await client.write_event(event)
        async with asyncio.timeout(timeout):
            while True:
                event = await client.read_event()
                if event is None:
                    break
                received.events.append(event)
                if event.type in until:
                    break
    finally:
        await client.disconnect()
    return received


async def describe(port: int) -> Event:
    received = await exchange(port, Describe().event(), until=("info",), timeout=5)
    return received.first("info")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for the HTTP door's tests."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def connected(server: ServerProcess) -> AsyncIterator[AsyncTcpClient]:
    client = AsyncTcpClient("127.0.0.1", server.port)
    await client.connect()
    yield client
    await client.disconnect()


def speech_like(audio: np.ndarray, rate: int) -> bool:
    """Non-silent with pauses and loud parts, as speech has — not a constant or a tone."""
    if len(audio) < rate * 0.3:
        return False
    frame = rate // 50
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    energy = np.sqrt((frames**2).mean(axis=1))
    loud = energy > 0.02
    return bool(loud.mean() > 0.2 and (energy < energy.max() * 0.1).any() and energy.max() < 1.0)
