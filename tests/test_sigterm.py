"""SIGTERM while busy: stop accepting, cancel the work, exit 0 within 2 s.

``docker stop`` and s6-overlay (the Home Assistant add-on) send SIGTERM and kill soon after;
exit code 0 tells s6's finish script that the add-on was stopped, not that it crashed.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import aiohttp
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from conftest import ServerProcess, free_port, start_server

LONG_TEXT = "客厅温度二十三度，湿度百分之六十，空气质量良好。" * 20
NO_CACHE = ("--cache-mb", "0")  # repeated sentences would come from the cache at once: keep the workers busy


async def _busy_clients(server: ServerProcess, count: int) -> list[AsyncTcpClient]:
    """``count`` connections, each with a long synthesis; returns once the first one hears audio."""
    clients = []
    for _ in range(count):
        client = AsyncTcpClient("127.0.0.1", server.port)
        await client.connect()
        await client.write_event(Synthesize(text=LONG_TEXT).event())
        clients.append(client)
    while (event := await clients[0].read_event()) is not None and event.type != "audio-chunk":
        pass
    assert event is not None, server.log
    return clients


async def _terminate(server: ServerProcess) -> tuple[int, float]:
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(server.process.wait, 5)
    return code, time.monotonic() - started


async def test_sigterm_while_synthesizing_exits_cleanly_and_fast(tmp_path: Path) -> None:
    server = start_server(tmp_path, *NO_CACHE)
    clients: list[AsyncTcpClient] = []
    try:
        clients = await _busy_clients(server, 2)
        code, elapsed = await _terminate(server)
    finally:
        for client in clients:
            await client.disconnect()
        if server.process.poll() is None:
            server.process.kill()
    assert code == 0, server.log
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    assert "Stopping" in server.log
    assert "Traceback" not in server.log, server.log
    with socket.socket() as sock:  # nothing listens any more
        assert sock.connect_ex(("127.0.0.1", server.port)) != 0


async def test_sigterm_with_http_requests_in_flight(tmp_path: Path) -> None:
    """aiohttp alone would wait up to a minute for a request in progress; the server does not."""
    http_port = free_port()
    server = start_server(tmp_path, *NO_CACHE, "--http-uri", f"http://127.0.0.1:{http_port}")
    clients: list[AsyncTcpClient] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(50):  # the HTTP door opens just after the Wyoming one
            try:
                async with session.get(f"http://127.0.0.1:{http_port}/health") as health:
                    if health.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        request = asyncio.create_task(
            session.post(f"http://127.0.0.1:{http_port}/api/tts/synthesize", json={"text": LONG_TEXT * 3})
        )
        try:
            clients = await _busy_clients(server, 1)
            await asyncio.sleep(0.2)
            assert not request.done()
            code, elapsed = await _terminate(server)
        finally:
            request.cancel()
            await asyncio.gather(request, return_exceptions=True)
            for client in clients:
                await client.disconnect()
            if server.process.poll() is None:
                server.process.kill()
    assert code == 0, server.log
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
