"""The web page in a real headless Chromium: type Chinese text, press play, audio arrives.

The server has a token (from the environment, as docker-compose passes it): the page asks for it,
then works. Labels follow the browser's language; the page loads without a single failed request
(its icon included)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ARTIFACTS, ServerProcess, free_port, start_server, stop_server
from wyoming_indextts.__main__ import HTTP_TOKEN_ENV

TOKEN = "browser-test-token-7f3a"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--autoplay-policy=no-user-gesture-required"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv(HTTP_TOKEN_ENV, TOKEN)
        server = start_server(tmp_path_factory.mktemp("web"), "--http-uri", f"http://127.0.0.1:{port}")
    yield server, f"http://127.0.0.1:{port}/"
    stop_server(server)


def test_page_plays_chinese_text(web_server: tuple[ServerProcess, str]) -> None:
    from playwright.sync_api import sync_playwright

    _, url = web_server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page(locale="en-US")
            page.goto(url)
            # No token yet: the page says so and asks for it.
            page.wait_for_selector("#tokenForm:not([hidden])")
            assert "access token" in (page.text_content("#status") or "")
            page.fill("#token", "not-the-token")
            page.click("#saveToken")
            page.wait_for_function("document.getElementById('status').textContent.includes('Wrong')")
            page.fill("#token", TOKEN)
            page.click("#saveToken")
            page.wait_for_function("document.querySelectorAll('#voice option').length >= 3")
            assert page.is_hidden("#tokenForm")
            assert page.input_value("#voice") == "zh_CN-baker"
            page.fill("#text", "打开客厅的灯，今天温度23度。")
            page.click("#play")
            page.wait_for_function("document.body.dataset.audioBytes !== undefined", timeout=30_000)
            audio_bytes = int(page.evaluate("document.body.dataset.audioBytes"))
            first_audio = page.evaluate("document.body.dataset.firstAudioMs")
            status = page.text_content("#status") or ""
            duration = page.evaluate("new Promise(r => { const a = document.getElementById('audio'); "
                                     "if (a.readyState >= 1) r(a.duration); else a.onloadedmetadata = () => r(a.duration); })")
            page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
        finally:
            browser.close()
    assert audio_bytes > 24000 * 2 * 1.0  # more than a second of 24 kHz 16-bit audio
    assert first_audio and int(first_audio) > 0 and "first audio" in status
    assert 1.0 < float(duration) < 10.0  # the browser decoded the WAV it received


@pytest.mark.parametrize(("locale", "play", "help_word"), [("zh-CN", "播放", "声音"), ("en-GB", "Play", "voice")])
def test_page_speaks_the_browsers_language_and_loads_cleanly(web_server: tuple[ServerProcess, str], locale: str, play: str, help_word: str) -> None:
    from playwright.sync_api import sync_playwright

    _, url = web_server
    failed: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            context = browser.new_context(locale=locale)
            # The token remembered from an earlier visit (the page keeps it in localStorage).
            context.add_init_script(f"localStorage.setItem('indextts-token', '{TOKEN}')")
            page = context.new_page()
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.wait_for_function("document.querySelectorAll('#voice option').length >= 3")
            page.wait_for_timeout(500)  # the icon request, if any, is made after the load
            labels = {"play": page.text_content("#play"), "help": page.text_content("#help"), "lang": page.evaluate("document.documentElement.lang")}
            icon = page.evaluate("fetch('favicon.svg').then(r => r.status)")
        finally:
            browser.close()
    assert labels["play"] == play and help_word in (labels["help"] or "") and labels["lang"].startswith(locale[:2])
    assert icon == 200
    assert failed == []  # no 404 for an icon, no failed API call
