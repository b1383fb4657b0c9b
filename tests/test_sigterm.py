"""SIGTERM while busy: stop accepting, drop the work, exit 0 within 2 s (Docker and s6 wait 10 s)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from conftest import start_server


async def test_sigterm_while_synthesizing_exits_cleanly_and_fast(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    clients = []
    try:
        for _ in range(2):
            client = AsyncTcpClient("127.0.0.1", server.port)
            await client.connect()
            await client.write_event(Synthesize(text="客厅温度二十三度，湿度百分之六十，空气质量良好。" * 20).event())
            clients.append(client)
        while (event := await clients[0].read_event()) is not None and event.type != "audio-chunk":
            pass
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.process.wait, 5)
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            await client.disconnect()
        if server.process.poll() is None:
            server.process.kill()
    assert code == 0, server.log
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
