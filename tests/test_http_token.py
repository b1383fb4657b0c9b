"""The HTTP door locked with a shared token: 401 without it, 403 with a wrong one, the page open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from conftest import ServerProcess, free_port, start_server, stop_server
from wyoming_indextts.__main__ import HTTP_TOKEN_ENV, _http_token, build_parser
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.server.http import HttpDoor, HttpSettings
from wyoming_indextts.synthesis import SynthesisSettings, Synthesizer
from wyoming_indextts.voices import VoiceCatalog

TOKEN = "s3cret-Token_0123456789"


# -- where the token comes from -----------------------------------------------------------------


def _token(*argv: str) -> str | None:
    parser = build_parser()
    return _http_token(parser, parser.parse_args(list(argv)))


def test_token_from_flag_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HTTP_TOKEN_ENV, raising=False)
    assert _token() is None
    assert _token("--http-token", TOKEN) == TOKEN
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n", encoding="utf-8")  # as `echo TOKEN > file` writes it
    assert _token("--http-token-file", str(token_file)) == TOKEN
    monkeypatch.setenv(HTTP_TOKEN_ENV, "from-the-environment")
    assert _token() == "from-the-environment"
    assert _token("--http-token", TOKEN) == TOKEN  # a flag wins over the environment
    with pytest.raises(SystemExit):  # one or the other, not both
        build_parser().parse_args(["--http-token", TOKEN, "--http-token-file", str(token_file)])


@pytest.mark.parametrize("content", ["", "\n", "two words\n"])
def test_unusable_token_file_stops_the_server_with_a_message(tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(content, encoding="utf-8")
    for argv, message in (
        (("--http-token-file", str(token_file)), "empty or contains spaces"),
        (("--http-token-file", str(tmp_path / "missing")), "cannot read --http-token-file"),
    ):
        with pytest.raises(SystemExit) as stopped:
            _token(*argv)
        assert stopped.value.code == 2 and message in capsys.readouterr().err  # as every bad flag: PROG: error: ...


# -- a real server with a token file ---------------------------------------------------------------


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    folder = tmp_path_factory.mktemp("locked")
    (folder / "token").write_text(TOKEN + "\n", encoding="utf-8")
    port = free_port()
    server = start_server(folder, "--http-uri", f"http://127.0.0.1:{port}", "--http-token-file", str(folder / "token"), "--cache-mb", "0")
    yield server, f"http://127.0.0.1:{port}"
    stop_server(server)


PROTECTED = [
    ("GET", "/api/voices"), ("GET", "/health"), ("GET", "/metrics"), ("POST", "/api/tts/synthesize"),
    ("GET", "/static/audio/" + "0" * 32 + ".wav"), ("POST", "/api/tts/jobs"), ("GET", "/api/tts/jobs/" + "0" * 32),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_api_path_needs_the_token(locked_server: tuple[ServerProcess, str], session: aiohttp.ClientSession, method: str, path: str) -> None:
    _, base = locked_server
    body = {"text": "你好。"}
    async with session.request(method, base + path, json=body) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.json())["code"] == "unauthorized"
        assert "Access-Control-Allow-Origin" not in response.headers  # CORS stays off unless asked
    for header in ("Bearer wrong-token", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN):
        async with session.request(method, base + path, json=body, headers={"Authorization": header}) as response:
            assert response.status in (401, 403), header
            assert response.status == (403 if header.startswith("Bearer") else 401), header


async def test_the_right_token_opens_the_api_and_metrics(locked_server: tuple[ServerProcess, str], session: aiohttp.ClientSession) -> None:
    server, base = locked_server
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with session.get(f"{base}/api/voices", headers=auth) as response:
        assert response.status == 200
        assert "zh_CN-baker" in {v["name"] for v in (await response.json())["voices"]}
    async with session.get(f"{base}/metrics", headers=auth) as response:
        assert response.status == 200 and "indextts_http_requests" in await response.text()
    async with session.post(f"{base}/api/tts/synthesize", json={"text": "你好。"}, headers=auth) as response:
        assert response.status == 200
        audio_url = (await response.json())["audio_url"]
    async with session.get(base + audio_url) as response:
        assert response.status == 401
    async with session.get(base + audio_url, headers={"Authorization": f"bearer {TOKEN}"}) as response:  # the scheme is case-insensitive
        assert response.status == 200 and (await response.read())[:4] == b"RIFF"
    assert TOKEN not in server.log  # never logged


async def test_page_and_icon_load_without_the_token(locked_server: tuple[ServerProcess, str], session: aiohttp.ClientSession) -> None:
    _, base = locked_server
    async with session.get(f"{base}/") as response:
        assert response.status == 200 and 'id="tokenForm"' in await response.text()
    for icon in ("/favicon.svg", "/favicon.ico"):
        async with session.get(base + icon) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "image/svg+xml"
            assert (await response.read()).startswith(b"<svg")


# -- CORS with a token ------------------------------------------------------------------------------


async def test_cors_preflight_allows_the_authorization_header(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    """A page from the allowed origin sends a preflight without credentials, then the token."""
    synthesizer = Synthesizer(VoiceCatalog([], [], None), Frontend(), SynthesisSettings(cache_mb=0))
    port = free_port()
    door = HttpDoor(synthesizer, HttpSettings(port=port, audio_dir=tmp_path, token=TOKEN, cors_origin="http://example.test"))
    await door.start()
    base = f"http://127.0.0.1:{port}"
    try:
        preflight = {"Origin": "http://example.test", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
        async with session.options(f"{base}/api/tts/synthesize", headers=preflight) as response:
            assert response.status == 204
            assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
        async with session.get(f"{base}/api/voices", headers={"Origin": "http://example.test"}) as response:
            assert response.status == 401  # and the page can read why
            assert response.headers["Access-Control-Allow-Origin"] == "http://example.test"
        async with session.get(f"{base}/api/voices", headers={"Origin": "http://example.test", "Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "http://example.test"
    finally:
        await door.stop()
        synthesizer.close()
