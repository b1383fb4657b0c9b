"""One set of input rules at every door: the same check, message and code on Wyoming, on HTTP
and on the command line (the server's flags and ``say``), and never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import soundfile as sf
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeVoice

from conftest import ServerProcess, exchange, free_port, start_server, stop_server
from wyoming_indextts.frontend.lexicon import LexiconError, load_lexicon
from wyoming_indextts.synthesis import NOTHING_SPOKEN_SECONDS, SynthesisError, check_speed

MAX_CHARS = 80


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    server = start_server(tmp_path_factory.mktemp("rules"), "--http-uri", f"http://127.0.0.1:{port}", "--max-text-chars", str(MAX_CHARS))
    yield server, f"http://127.0.0.1:{port}"
    stop_server(server)


def _command(module: str, *args: str, stdin: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", module, *args], input=stdin, capture_output=True, cwd=cwd, timeout=120, check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def _say(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return _command("wyoming_indextts.say", *args, stdin=stdin)


def _refused(result: subprocess.CompletedProcess[str], message: str, code: str) -> None:
    """Refused as a command line refuses: status 2, the message and its code, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "error: " in result.stderr and f"{message} ({code})" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def _message(check: object, *args: object) -> str:
    try:
        check(*args)  # type: ignore[operator]
    except (SynthesisError, LexiconError) as err:
        return str(err)
    raise AssertionError(f"{check} accepted {args}")


async def _http(base: str, **body: object) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.post(f"{base}/api/tts/synthesize", json=body) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("speed", [0, -1, 4.5])
async def test_speed_is_refused_alike_by_http_say_and_the_server(doors: tuple[ServerProcess, str], speed: float, tmp_path: Path) -> None:
    _, base = doors
    message = _message(check_speed, speed)
    status, answer = await _http(base, text="你好", speed=speed)
    assert (status, answer["code"], answer["error"]) == (400, "bad-speed", message)
    _refused(_say("--speed", str(speed), "-o", str(tmp_path / "x.wav"), "你好"), message, "bad-speed")
    _refused(_command("wyoming_indextts", "--speed", str(speed)), message, "bad-speed")


async def test_empty_text_alike_on_wyoming_http_and_say(doors: tuple[ServerProcess, str], tmp_path: Path) -> None:
    server, base = doors
    received = await exchange(server.port, Synthesize(text="   ").event())
    error = received.first("error").data
    status, answer = await _http(base, text="   ")
    assert (status, answer["code"], answer["error"]) == (400, error["code"], error["text"])
    _refused(_say("-o", str(tmp_path / "x.wav"), "   "), str(error["text"]), "empty-text")


async def test_unknown_voice_alike_everywhere(doors: tuple[ServerProcess, str], tmp_path: Path) -> None:
    server, base = doors
    received = await exchange(server.port, Synthesize(text="你好", voice=SynthesizeVoice(name="nobody")).event())
    error = received.first("error").data
    assert error["code"] == "unknown-voice"
    status, answer = await _http(base, text="你好", voice="nobody")
    assert (status, answer["code"], answer["error"]) == (404, "unknown-voice", error["text"])
    _refused(_say("--voice", "nobody", "-o", str(tmp_path / "x.wav"), "你好"), str(error["text"]), "unknown-voice")
    # A name no folder or package has is a typo at start-up too, not a silent switch of voice.
    _refused(_command("wyoming_indextts", "--voice", "nobody", "--uri", f"tcp://127.0.0.1:{free_port()}"), str(error["text"]), "unknown-voice")


async def test_too_long_text_alike_on_wyoming_and_http(doors: tuple[ServerProcess, str]) -> None:
    server, base = doors
    received = await exchange(server.port, Synthesize(text="好" * (MAX_CHARS + 1)).event())
    error = received.first("error").data
    assert error["code"] == "text-too-long" and str(MAX_CHARS) in error["text"]
    status, answer = await _http(base, text="好" * (MAX_CHARS + 1))
    assert (status, answer["code"], answer["error"]) == (413, "text-too-long", error["text"])


async def test_wrong_field_types_alike_on_wyoming_and_http(doors: tuple[ServerProcess, str]) -> None:
    server, base = doors
    received = await exchange(server.port, Event(type="synthesize", data={"text": 42}))
    error = received.first("error").data
    status, answer = await _http(base, text=42)
    assert (status, answer["code"], answer["error"]) == (400, "bad-field", error["text"])
    assert error["code"] == "bad-field"


async def test_nothing_speakable_is_a_short_silence_on_http_and_say(doors: tuple[ServerProcess, str], tmp_path: Path) -> None:
    _, base = doors
    status, answer = await _http(base, text="。。。")
    assert status == 200 and answer["duration"] == pytest.approx(NOTHING_SPOKEN_SECONDS, abs=0.01)
    result = _say("-o", str(tmp_path / "silence.wav"), "？！")
    assert result.returncode == 0, result.stderr
    audio, rate = sf.read(tmp_path / "silence.wav")
    assert len(audio) / rate == pytest.approx(NOTHING_SPOKEN_SECONDS, abs=0.01) and abs(audio).max() == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read the lexicon"),
        ("银行 yin2\n".encode(), "expected a word and one toned pinyin syllable per character"),
        ("银行 yin2 hang2\n".encode("gbk"), "not UTF-8 text"),
    ],
    ids=["missing", "malformed", "not-utf8"],
)
def test_a_bad_lexicon_is_refused_alike_by_say_and_the_server(tmp_path: Path, content: bytes | None, expected: str) -> None:
    lexicon = tmp_path / "lexicon.txt"
    if content is not None:
        lexicon.write_bytes(content)
    message = _message(load_lexicon, lexicon)
    assert expected in message and str(lexicon) in message
    _refused(_say("--lexicon", str(lexicon), "-o", str(tmp_path / "x.wav"), "银行"), message, "bad-lexicon")
    _refused(_command("wyoming_indextts", "--lexicon", str(lexicon)), message, "bad-lexicon")


def test_say_refuses_stdin_that_is_not_utf8_and_an_unwritable_output(tmp_path: Path) -> None:
    result = _say("-o", str(tmp_path / "x.wav"), "-", stdin="银行".encode("gbk"))
    assert result.returncode == 2 and "standard input is not UTF-8" in result.stderr and "Traceback" not in result.stderr
    for output in (tmp_path / "missing-folder" / "x.wav", tmp_path):
        result = _say("-o", str(output), "你好")
        assert result.returncode == 2 and f"cannot write {output}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--max-text-chars", "0"), ("--threads", "-2"), ("--samples-per-chunk", "x"), ("--idle-timeout", "-1"), ("--stream-timeout", "nan")],
)
def test_server_flags_out_of_range_are_refused_before_start(flag: str, value: str) -> None:
    result = _command("wyoming_indextts", flag, value)
    assert result.returncode == 2 and f"argument {flag}" in result.stderr and "Traceback" not in result.stderr


def test_help_names_the_commands_as_typed() -> None:
    assert _say("--help").stdout.startswith("usage: python -m wyoming_indextts.say")
    assert _command("wyoming_indextts", "--help").stdout.startswith("usage: wyoming-indextts")
