"""A real Home Assistant core for the tests: installed once into a cached virtual environment,
started on loopback with a minimal configuration, onboarded and given the Wyoming integration
through its own REST API, exactly as a user's clicks would.

Which release: the newest whose ``Requires-Python`` admits the running Python (Home Assistant
dropped 3.11 after 2024.3, 3.12 after 2025.1). Its components' pinned requirements are read from
their own ``manifest.json`` files (the configured components, the ones every start sets up, and
their dependencies), as Home Assistant's installer would, and installed up front so that Home
Assistant can start with ``--skip-pip`` (no installs while the test runs).

The environment lives in ``$INDEXTTS_TEST_CACHE`` (default ``~/.cache/wyoming-indextts-tests``),
keyed by release and Python, so only the first run pays for the download (about 300 MB).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# Newest release per Python, from each release's Requires-Python (checked on PyPI).
RELEASE_FOR_PYTHON = {(3, 11): "2024.3.3", (3, 12): "2025.1.4"}

# Components the minimal configuration loads, and the Wyoming integration we add: their
# manifests name what to install (HA would pip-install these itself at start-up).
COMPONENTS = ("http", "api", "config", "onboarding", "websocket_api", "tts", "media_source", "logger", "wyoming",
              # the Wyoming config flow imports the zeroconf component (discovery)
              "zeroconf")

EXTRA_PINS = (
    # josepy 2 removed what acme (pulled in by hass_nabucasa, the cloud component) imports: with
    # it, cloud and frontend fail to set up and Home Assistant starts in recovery mode.
    "josepy<2",
)

CONFIGURATION = """\
homeassistant:
  name: indextts-test
  time_zone: Asia/Shanghai
  country: CN
  unit_system: metric
  latitude: 31.2
  longitude: 121.5
  elevation: 4
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
config:
onboarding:
websocket_api:
tts:
media_source:
logger:
  default: warning
  logs:
    homeassistant.components.wyoming: debug
"""


def cache_root() -> Path:
    explicit = os.environ.get("INDEXTTS_TEST_CACHE")
    if explicit:
        return Path(explicit)
    # Not XDG_CACHE_HOME: the test session points that at a temporary folder (conftest.model_cache).
    return Path.home() / ".cache" / "wyoming-indextts-tests"


def release() -> str:
    return RELEASE_FOR_PYTHON.get(sys.version_info[:2], "")


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _manifest_requirements(python: Path) -> list[str]:
    """Requirements of COMPONENTS and their dependencies, from the installed release's manifests."""
    script = (
        "import json, sys, pathlib, homeassistant.components as c, homeassistant.bootstrap as b\n"
        "root = pathlib.Path(c.__path__[0]); seen = set(); reqs = []\n"
        # What every start sets up besides the configured components.
        "todo = [*sys.argv[1:], *b.CORE_INTEGRATIONS, *b.LOGGING_INTEGRATIONS, *b.FRONTEND_INTEGRATIONS, *b.RECORDER_INTEGRATIONS, *b.DEFAULT_INTEGRATIONS]\n"
        "while todo:\n"
        "    name = todo.pop()\n"
        "    if name in seen or not (root / name / 'manifest.json').exists(): continue\n"
        "    seen.add(name); m = json.loads((root / name / 'manifest.json').read_text())\n"
        "    reqs += m.get('requirements', []); todo += m.get('dependencies', [])\n"
        "print(json.dumps(sorted(set(reqs))))\n"
    )
    return list(json.loads(_run([str(python), "-c", script, *COMPONENTS]).stdout))


def ensure_installed() -> Path:
    """The cached environment's ``hass``, installing it first if needed (under a lock: parallel
    test runs wait for one install instead of racing)."""
    version = release()
    if not version:
        raise RuntimeError(f"no Home Assistant release is known for Python {sys.version_info[:2]}; add it to RELEASE_FOR_PYTHON")
    venv = cache_root() / f"homeassistant-{version}-py{sys.version_info[0]}{sys.version_info[1]}"
    hass = venv / "bin" / "hass"
    done = venv / ".complete"
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists() and hass.exists():
            return hass
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv)])
        python = venv / "bin" / "python"
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run([*pip, f"homeassistant=={version}", *EXTRA_PINS])
        _run([*pip, f"homeassistant=={version}", *EXTRA_PINS, *_manifest_requirements(python)])
        done.write_text(version)
    return hass


@dataclass
class HomeAssistant:
    """A running Home Assistant with an owner account and a long-lived access token."""

    port: int
    process: subprocess.Popen[bytes]
    config_dir: Path
    token: str = ""
    log_path: Path = field(default_factory=Path)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30.0, form: dict[str, str] | None = None
    ) -> tuple[int, bytes, str]:
        """One HTTP request to Home Assistant: (status, body, its Content-Type)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers.get_content_type()

    def json(self, method: str, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        status, data, _ = self.request(method, path, body, **kwargs)
        if status >= 400:
            raise RuntimeError(f"{method} {path} → {status}: {data[:500]!r}\n{self.log[-3000:]}")
        return json.loads(data)

    # -- set-up as a user would ------------------------------------------------------------

    def onboard(self) -> None:
        client_id = self.base + "/"
        status, data, _ = self.request(
            "POST", "/api/onboarding/users",
            {"client_id": client_id, "name": "Test", "username": "test", "password": "test-password-1", "language": "en"},
        )
        if status != 200:
            raise RuntimeError(f"onboarding failed ({status}): {data[:300]!r}")
        code = json.loads(data)["auth_code"]
        status, data, _ = self.request(
            "POST", "/auth/token", form={"grant_type": "authorization_code", "code": code, "client_id": client_id}
        )
        if status != 200:
            raise RuntimeError(f"token exchange failed ({status}): {data[:300]!r}")
        self.token = json.loads(data)["access_token"]
        # The remaining steps a user clicks through (core_config needs libraries we leave out).
        self.request("POST", "/api/onboarding/analytics", {})
        self.request("POST", "/api/onboarding/integration", {"client_id": client_id, "redirect_uri": client_id + "?auth_callback=1"})

    def add_wyoming(self, port: int) -> str:
        """The Wyoming integration through its config flow; returns the TTS entity id."""
        flow = self.json("POST", "/api/config/config_entries/flow", {"handler": "wyoming", "show_advanced_options": False})
        result = self.json("POST", f"/api/config/config_entries/flow/{flow['flow_id']}", {"host": "127.0.0.1", "port": port})
        if result.get("type") != "create_entry":
            raise RuntimeError(f"Wyoming config flow did not create an entry: {result}\n{self.log[-3000:]}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = self.json("GET", "/api/states")
            entities = [s["entity_id"] for s in states if s["entity_id"].startswith("tts.")]
            if entities:
                return str(entities[0])
            time.sleep(0.3)
        raise RuntimeError(f"no tts entity appeared\n{self.log[-3000:]}")

    # -- speaking ---------------------------------------------------------------------------

    def clear_tts_cache(self) -> None:
        """Home Assistant keeps what it synthesized in memory whatever ``cache`` says; clearing it
        makes the next request reach the server (it also drops requests still in flight)."""
        status, data, _ = self.request("POST", "/api/services/tts/clear_cache", {})
        if status != 200:
            raise RuntimeError(f"tts.clear_cache failed ({status}): {data[:300]!r}")

    def speak(self, entity: str, message: str, language: str | None = None, options: dict[str, Any] | None = None,
              timeout: float = 150.0, clear_cache: bool = True) -> "Spoken":
        """``/api/tts_get_url`` then GET the audio, as a media player would; timed end to end."""
        if clear_cache:
            self.clear_tts_cache()
        body: dict[str, Any] = {"engine_id": entity, "message": message, "cache": False}
        if language:
            body["language"] = language
        if options:
            body["options"] = options
        started = time.monotonic()
        status, data, _ = self.request("POST", "/api/tts_get_url", body, timeout=timeout)
        if status != 200:
            return Spoken(status, b"", time.monotonic() - started, data.decode(errors="replace"))
        path = json.loads(data)["path"]
        status, audio, content_type = self.request("GET", path, timeout=timeout)
        if status != 200:
            return Spoken(status, b"", time.monotonic() - started, audio.decode(errors="replace"))
        return Spoken(status, audio, time.monotonic() - started, content_type=content_type)


DECODED_RATE = 16000
# ffmpeg's demuxer for each Content-Type Home Assistant may serve.
DEMUXER_FOR = {"audio/mpeg": "mp3", "audio/x-wav": "wav", "audio/wav": "wav", "audio/flac": "flac"}


@dataclass(frozen=True)
class Spoken:
    status: int
    audio: bytes
    seconds: float
    error: str = ""
    content_type: str = ""

    def duration(self) -> float:
        """Seconds of audio in the answer, decoded by ffmpeg as its Content-Type says and counted
        (a piped mp3 has no duration in its header).

        The format is given, as a media player takes it from the Content-Type, not guessed:
        Home Assistant 2024.3 tags its mp3 so that it starts with two ID3 tags (its own in front
        of ffmpeg's), which leaves ffmpeg's mp3 probe at a score of 25; about one answer in 500
        (it depends on the audio bytes) also scores 25 as H.263, which is probed first and wins,
        and the guess fails with "Invalid data found when processing input"
        (tests/data/ha-mp3-probed-as-h263.mp3 is one such answer).
        """
        return len(self.samples()) / 2 / DECODED_RATE

    def samples(self) -> bytes:
        """The answer as 16-bit mono PCM at ``DECODED_RATE``, decoded as its Content-Type says."""
        demuxer = DEMUXER_FOR.get(self.content_type)
        if demuxer is None:
            raise AssertionError(f"Home Assistant answered {len(self.audio)} bytes of {self.content_type!r}, not audio")
        try:
            return to_pcm(self.audio, ["-f", demuxer])
        except RuntimeError as err:
            ARTIFACTS.mkdir(exist_ok=True)
            kept = ARTIFACTS / f"undecodable-{time.time_ns()}.{demuxer}"
            kept.write_bytes(self.audio)
            raise AssertionError(
                f"ffmpeg cannot decode the {len(self.audio)} bytes of {self.content_type} Home Assistant sent (kept in {kept}): {err}"
            ) from err


def to_pcm(data: bytes, input_format: list[str]) -> bytes:
    """``data`` (of the ffmpeg input format given) as 16-bit mono PCM at ``DECODED_RATE``."""
    result = subprocess.run(
        ["ffmpeg", "-v", "error", *input_format, "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", str(DECODED_RATE), "pipe:1"],
        input=data, capture_output=True, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace")[-500:])
    return result.stdout


def start(hass: Path, config_dir: Path, port: int, timeout: float = 240.0) -> HomeAssistant:
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=port), encoding="utf-8")
    log_path = config_dir / "hass-output.log"
    process = subprocess.Popen(
        [str(hass), "-c", str(config_dir), "--skip-pip", "--log-no-color"],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        # Its own environment: nothing of the test's venv on the path.
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(config_dir), "LANG": "C.UTF-8"},
    )
    ha = HomeAssistant(port, process, config_dir, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Home Assistant exited with {process.returncode}:\n{ha.log[-5000:]}")
        try:
            status, _, _ = ha.request("GET", "/api/onboarding", timeout=2)
            if status == 200:
                return ha
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"Home Assistant did not answer in {timeout} s:\n{ha.log[-5000:]}")


def stop(ha: HomeAssistant) -> None:
    ha.process.terminate()
    try:
        ha.process.wait(30)
    except subprocess.TimeoutExpired:
        ha.process.kill()
        ha.process.wait()
