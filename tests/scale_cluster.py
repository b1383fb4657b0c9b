"""Real Redis, HAProxy, replicas and job workers on loopback, for the scale-out tests.

Redis runs deploy/redis.conf and HAProxy deploy/haproxy.cfg — the files users deploy — with
only what a loopback test must change: ports, folders, and the replicas' addresses in place
of the Docker DNS server-templates.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from conftest import REPO, ServerProcess, free_port, start_server

DEPLOY = REPO / "deploy"


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s:\n{log.read_text(errors='replace')}")


@dataclass
class RedisServer:
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        log = self.folder / f"redis-{self.port}.log"
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", str(DEPLOY / "redis.conf"), "--port", str(self.port),
             "--bind", "127.0.0.1", "--dir", str(self.folder), "--appendonly", "no", "--daemonize", "no"],
            stdout=log.open("ab"), stderr=subprocess.STDOUT,
        )
        _wait_for_port(self.port, self.process, 10, "redis-server", log)
        return self

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)


def start_redis(folder: Path) -> RedisServer:
    return RedisServer(free_port(), folder).start()


def haproxy_config(replicas: Sequence[tuple[int, int]], socket_path: Path) -> str:
    """deploy/haproxy.cfg with ``server`` lines for (wyoming port, http port) on loopback."""
    text = (DEPLOY / "haproxy.cfg").read_text()
    text = text.replace("global\n", f"global\n    stats socket {socket_path} mode 600 level admin\n", 1)

    def servers(match: re.Match[str]) -> str:
        indent, port, options = match.group(1), match.group(2), match.group(3)
        options = options.replace("resolvers docker", "").replace("init-addr none", "")
        index = 0 if port == "10200" else 1
        return "\n".join(
            f"{indent}server r{k} 127.0.0.1:{ports[index]} {' '.join(options.replace('port 8080', f'port {ports[1]}').split())}"
            for k, ports in enumerate(replicas)
        )

    text, count = re.subn(r"^(\s*)server-template indextts \d+ indextts:(\d+) (.*)$", servers, text, flags=re.M)
    assert count == 2, "deploy/haproxy.cfg should have one server-template per backend"
    return text


@dataclass
class HAProxy:
    wyoming_port: int
    http_port: int
    socket_path: Path
    process: subprocess.Popen[bytes]

    def stats(self) -> dict[tuple[str, str], str]:
        """(backend, server) → status (UP, DOWN, …) from HAProxy's own stats."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.socket_path))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        rows = data.decode().splitlines()
        header = rows[0].lstrip("# ").split(",")
        result = {}
        for row in rows[1:]:
            fields = dict(zip(header, row.split(",")))
            if fields.get("svname") not in (None, "FRONTEND", "BACKEND"):
                result[(fields["pxname"], fields["svname"])] = fields["status"]
        return result

    def wait_until(self, wanted: dict[str, str], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.stats()
            if all(states.get((backend, server)) == status for server, status in wanted.items() for backend in ("wyoming", "http")):
                return
            time.sleep(0.2)
        raise AssertionError(f"HAProxy did not reach {wanted}: {self.stats()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_haproxy(folder: Path, replicas: Sequence[tuple[int, int]]) -> HAProxy:
    config = folder / "haproxy.cfg"
    socket_path = folder / "haproxy.sock"
    config.write_text(haproxy_config(replicas, socket_path))
    wyoming_port, http_port = free_port(), free_port()
    log = folder / "haproxy.log"
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    process = subprocess.Popen(
        [binary, "-db", "-f", str(config)], stdout=log.open("ab"), stderr=subprocess.STDOUT,
        env={**os.environ, "WYOMING_BIND": f"127.0.0.1:{wyoming_port}", "HTTP_BIND": f"127.0.0.1:{http_port}"},
    )
    _wait_for_port(http_port, process, 10, "haproxy", log)
    _wait_for_port(wyoming_port, process, 10, "haproxy", log)
    return HAProxy(wyoming_port, http_port, socket_path, process)


@dataclass
class Replica:
    server: ServerProcess
    http_port: int

    @property
    def wyoming_port(self) -> int:
        return self.server.port


def start_replicas(folder: Path, count: int, redis_url: str, *extra: str) -> list[Replica]:
    """``count`` servers started side by side (loading voices takes seconds each)."""
    http_ports = [free_port() for _ in range(count)]

    def start(http_port: int) -> Replica:
        server = start_server(
            folder, "--http-uri", f"http://127.0.0.1:{http_port}", "--redis-url", redis_url,
            "--threads", "1", "--max-workers", "1", *extra, timeout=180,
        )
        return Replica(server, http_port)

    with ThreadPoolExecutor(count) as pool:
        replicas = list(pool.map(start, http_ports))
    for replica in replicas:  # the HTTP door opens just after the Wyoming one
        _wait_for_port(replica.http_port, replica.server.process, 30, "HTTP door", replica.server.log_path)
    return replicas


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_worker(folder: Path, redis_url: str, *extra: str) -> Worker:
    log_path = folder / f"worker-{free_port()}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "wyoming_indextts", "worker", "--redis-url", redis_url, "--threads", "1", "--heartbeat", "1", *extra],
        cwd=REPO, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Worker(process, log_path)


def wait_for_workers(workers: Sequence[Worker], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    for worker in workers:
        while "taking jobs" not in worker.log:
            if worker.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{worker.log}")
            time.sleep(0.2)


# -- clients ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # "wyoming" | "http"
    text: str
    started: float
    ended: float
    ok: bool
    first_audio: float | None = None
    """Seconds from sending to the first audio (Wyoming) or to the answer (HTTP to a file)."""
    detail: str = ""


async def wyoming_say(port: int, text: str, timeout: float = 60.0) -> Outcome:
    started = time.monotonic()
    client = AsyncTcpClient("127.0.0.1", port)
    first: float | None = None
    chunks = 0
    try:
        async with asyncio.timeout(timeout):
            await client.connect()
            await client.write_event(Synthesize(text=text).event())
            while True:
                event = await client.read_event()
                if event is None:
                    return Outcome("wyoming", text, started, time.monotonic(), False, first, f"closed after {chunks} chunks")
                if event.type == "audio-chunk":
                    chunks += 1
                    if first is None:
                        first = time.monotonic() - started
                elif event.type == "audio-stop":
                    return Outcome("wyoming", text, started, time.monotonic(), chunks > 0, first)
                elif event.type == "error":
                    return Outcome("wyoming", text, started, time.monotonic(), False, first, str(event.data))
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as err:
        return Outcome("wyoming", text, started, time.monotonic(), False, first, repr(err))
    finally:
        await client.disconnect()


async def http_say(session: aiohttp.ClientSession, port: int, text: str, timeout: float = 60.0) -> Outcome:
    started = time.monotonic()
    try:
        async with session.post(f"http://127.0.0.1:{port}/api/tts/synthesize", json={"text": text},
                                timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.json(content_type=None)
            ok = response.status == 200 and body.get("duration", 0) > 0
            return Outcome("http", text, started, time.monotonic(), ok, time.monotonic() - started,
                           "" if ok else f"{response.status} {body}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        return Outcome("http", text, started, time.monotonic(), False, None, repr(err))


async def mixed_load(wyoming_port: int, http_port: int, texts: Sequence[str], concurrency: int,
                     on_progress: "asyncio.Queue[Outcome] | None" = None) -> list[Outcome]:
    """Every text once, alternately over Wyoming and HTTP, ``concurrency`` at a time."""
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(k: int, text: str) -> Outcome:
            async with semaphore:
                outcome = await (wyoming_say(wyoming_port, text) if k % 2 == 0 else http_say(session, http_port, text))
            if on_progress is not None:
                on_progress.put_nowait(outcome)
            return outcome

        return list(await asyncio.gather(*(one(k, text) for k, text in enumerate(texts))))


def announcements(count: int, seed: int = 0) -> list[str]:
    """Distinct everyday announcements (numbers vary), Chinese and English."""
    rooms = ["客厅", "卧室", "厨房", "书房", "阳台"]
    texts = []
    for k in range(count):
        n = seed * 1000 + k
        if k % 4 == 3:
            texts.append(f"The garage door has been open for {n % 50 + 2} minutes.")
        else:
            texts.append(f"{rooms[n % len(rooms)]}温度{n % 15 + 15}度，湿度百分之{n % 40 + 30}。")
    return texts
