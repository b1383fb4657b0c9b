"""The web page in a real headless Chromium: type Chinese text, press play, audio arrives."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ARTIFACTS, ServerProcess, free_port, start_server, stop_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    server = start_server(tmp_path_factory.mktemp("web"), "--http-uri", f"http://127.0.0.1:{port}")
    yield server, f"http://127.0.0.1:{port}/"
    stop_server(server)


def test_page_plays_chinese_text(web_server: tuple[ServerProcess, str]) -> None:
    from playwright.sync_api import sync_playwright

    _, url = web_server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("document.querySelectorAll('#voice option').length >= 3")
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
