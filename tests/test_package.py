"""The package as users get it, not as the developers run it.

The wheel and the sdist are built with ``python -m build`` from the repository's files, and each
is installed (not editable) into a fresh virtual environment and run from another folder: the
server must list the three default voices and ``say`` must speak Chinese with the voice inside
the package. The runtime dependencies must resolve to binary wheels for the Raspberry Pi
(manylinux aarch64) on every Python the add-on may run.

Cost: the build and two installs take about a minute with pip's cache warm (CI reuses it), a few
minutes cold; the aarch64 resolution downloads ~150 MB of wheels per Python version the first time.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from wyoming.info import Info

from conftest import REPO, describe, speech_like, start_server, stop_server
from wyoming_indextts import voices

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
VOICE_FILES = {"voice.json", "acoustic.onnx", "vocoder.onnx", "symbols.json", "MODEL_CARD.md"}

# Runtime dependencies published only as an sdist. Each must build into a pure-Python wheel
# with no dependencies of its own, so that no platform can lack a wheel for it.
PURE_PYTHON_SDISTS = {"jieba"}
# Home Assistant's add-on base image (Debian bookworm) and Raspberry Pi OS bookworm: glibc 2.36.
AARCH64_PLATFORMS = ["manylinux2014_aarch64", *(f"manylinux_2_{minor}_aarch64" for minor in range(17, 37))]


def _clean_env() -> dict[str, str]:
    """This test environment's variables without what would let a child see the repository."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}


def _run(command: list[str | Path], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


# -- what the build is told ------------------------------------------------------------------


def test_package_list_names_every_package_folder() -> None:
    """pyproject.toml lists packages by hand (the voice mapping needs it): a new folder of code or
    data under wyoming_indextts/ must be added there, or the wheel would silently lack it."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(path.relative_to(REPO).parts)
        for path in (REPO / "wyoming_indextts").rglob("*")
        if path.is_dir() and path.name != "__pycache__" and any(p.is_file() for p in path.iterdir())
    }
    folders.add("wyoming_indextts")
    mapped = set(PYPROJECT["tool"]["setuptools"]["package-dir"])
    assert listed - mapped == folders
    assert PYPROJECT["tool"]["setuptools"]["package-dir"]["wyoming_indextts.models"] == "models"
    assert (REPO / "models/zh_CN-baker/voice.json").is_file()


# Every command a user types, with the usage line its --help must print.
COMMANDS = {
    "wyoming_indextts": "wyoming-indextts",
    "wyoming_indextts.say": "python -m wyoming_indextts.say",
    "wyoming_indextts.healthcheck": "python -m wyoming_indextts.healthcheck",
    "wyoming_indextts.frontend": "python -m wyoming_indextts.frontend",
    "wyoming_indextts.frontend.dictionaries": "python -m wyoming_indextts.frontend.dictionaries",
}
# A path that exists only on a developer's machine.
_MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|root|tmp)/")


@pytest.mark.parametrize(("module", "usage"), COMMANDS.items())
def test_help_names_the_command_a_user_types(module: str, usage: str, tmp_path: Path) -> None:
    result = _run([sys.executable, "-m", module, "--help"], cwd=tmp_path)
    assert result.stdout.startswith(f"usage: {usage} "), result.stdout[:200]
    assert not _MACHINE_PATH.search(result.stdout), result.stdout


def test_benchmark_help_points_at_nothing_only_developers_have() -> None:
    result = _run([sys.executable, str(REPO / "benchmarks/intelligibility.py"), "--help"], cwd=REPO)
    assert "usage: intelligibility.py" in result.stdout and not _MACHINE_PATH.search(result.stdout), result.stdout


def test_packaged_voices_come_first_and_only_from_an_installed_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """From this checkout the packed folder does not exist (models/ serves); in a wheel it does,
    and its voice comes before the other installed voices, as models/ does in a clone."""
    assert voices.packaged_voices() == []
    monkeypatch.setattr(voices, "PACKAGED_VOICES_DIR", REPO / "models")  # the wheel's layout
    found = voices.discover_voices([], espeak=False)
    assert [v.name for v in found.voices][:2] == ["zh_CN-baker", "en_US-joe-medium"] and not found.failures


# -- built, installed, run ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build`` on the files a clone has (tracked ones and new, not ignored ones):
    the sdist, then the wheel built from that sdist, as the tool does by default."""
    source = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode("utf-8").split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", out, source], cwd=out)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_wheel_is_pure_python_and_carries_the_chinese_voice(built: dict[str, Path]) -> None:
    wheel = built["wheel"]
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"wyoming_indextts/models/zh_CN-baker/{f}" for f in VOICE_FILES} <= names
    assert {"wyoming_indextts/web/index.html", "wyoming_indextts/data/prosody.onnx", "wyoming_indextts/py.typed"} <= names
    assert not any(n.startswith(("models/", "tests/", "benchmarks/")) for n in names)

    with tarfile.open(built["sdist"]) as archive:
        members = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
    assert {f"models/zh_CN-baker/{f}" for f in VOICE_FILES} <= members
    assert {"pyproject.toml", "README.md", "LICENSE"} <= members


@pytest.fixture(params=["wheel", "sdist"])
def installed(request: pytest.FixtureRequest, built: dict[str, Path], tmp_path: Path) -> Iterator[Path]:
    """A fresh virtual environment with the wheel or the sdist installed, as `pip install FILE`
    does it; yields its bin/ folder. pip's cache is shared with the rest of the machine.
    --no-compile: byte-compiling ~440 MB of dependencies is a third of the install time and not
    what is tested here (Python compiles what it imports anyway)."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    _run([venv / "bin/python", "-m", "pip", "install", "--quiet", "--no-compile", built[request.param]], cwd=tmp_path, timeout=900)
    yield venv / "bin"


async def test_installed_package_speaks_with_its_three_voices(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # no models/ here and no repository on the path
    elsewhere.mkdir()
    where = _run([installed / "python", "-c", "import wyoming_indextts; print(wyoming_indextts.__file__)"], cwd=elsewhere).stdout
    assert where.startswith(str(installed.parent)), where

    server = start_server(tmp_path, command=[str(installed / "wyoming-indextts")], cwd=elsewhere)
    try:
        info = Info.from_event(await describe(server.port))
    finally:
        stop_server(server)
    voices = [v.name for v in info.tts[0].voices]
    assert voices[:2] == ["zh_CN-baker", "en_US-joe-medium"] and "espeak-ng" in voices, voices  # as a clone lists them
    assert "not loaded" not in server.log, server.log

    out = tmp_path / "say.wav"
    _run([installed / "python", "-m", "wyoming_indextts.say", "--output", out, "客厅温度23.5°C，湿度60%。"], cwd=elsewhere, timeout=120)
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 24000  # zh_CN-baker's rate: the Chinese voice spoke, not a fallback
    assert 1.5 < len(audio) / rate < 8 and speech_like(np.asarray(audio), rate)


# -- Raspberry Pi: binary wheels for every runtime dependency -----------------------------------


@pytest.mark.parametrize("python_version", ["3.11", "3.12", "3.13"])
def test_runtime_dependencies_resolve_to_aarch64_wheels(python_version: str, tmp_path: Path) -> None:
    """`pip download --only-binary=:all:` for manylinux aarch64: an add-on build on a Raspberry Pi
    cannot fail on a dependency that would have to be compiled there."""
    requirements = [r for r in PYPROJECT["project"]["dependencies"] if _requirement_name(r) not in PURE_PYTHON_SDISTS]
    platforms = [arg for platform in AARCH64_PLATFORMS for arg in ("--platform", platform)]
    dest = tmp_path / "wheels"
    _run([
        sys.executable, "-m", "pip", "download", "--quiet", "--dest", dest, "--only-binary=:all:", *platforms,
        "--python-version", python_version, "--implementation", "cp", *requirements,
    ], cwd=tmp_path)
    wheels = sorted(p.name for p in dest.iterdir())
    shutil.rmtree(dest)  # ~150 MB; the names are what counts
    assert all(name.endswith(".whl") for name in wheels), wheels
    tags = [name.removesuffix(".whl").split("-")[-3:] for name in wheels]
    for name, (python, _abi, platform) in zip(wheels, tags):
        assert platform == "any" or "aarch64" in platform, name
        assert python.startswith(("py", "cp")), name
    found = {_requirement_name(name.split("-")[0]) for name in wheels}
    assert {_requirement_name(r) for r in requirements} <= found
    print(f"Python {python_version} aarch64:", *wheels, sep="\n  ")


@pytest.mark.parametrize("package", sorted(PURE_PYTHON_SDISTS))
def test_sdist_only_dependencies_are_pure_python(package: str, tmp_path: Path) -> None:
    requirement = next(r for r in PYPROJECT["project"]["dependencies"] if _requirement_name(r) == package)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp_path, requirement], cwd=tmp_path)
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name.endswith("-py3-none-any.whl") or wheel.name.endswith("-py2.py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        metadata = email.message_from_bytes(archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))))
    assert not metadata.get_all("Requires-Dist"), "its dependencies would need the aarch64 check too"
