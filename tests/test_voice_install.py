"""Installing downloaded models (``python -m wyoming_indextts.voices install|list``), finding
them, and speaking with them through the Wyoming door of a real server."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeVoice

from conftest import REPO, exchange, start_server, stop_server
from sherpa_fixtures import KOKORO_SPEAKERS, RELEASE_NAMES, set_options
from wyoming_indextts.engines import load_engine
from wyoming_indextts.engines.base import SynthesisConfig
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.frontend.pipeline import split_head
from wyoming_indextts.voice_install import InstallError, install, main
from wyoming_indextts.voices import discover_voices, read_manifest

MATCHA, MELO, KOKORO = (RELEASE_NAMES[f] for f in ("matcha", "melo", "kokoro"))
# Installed voices made deterministic (noise 0) so the door's audio can be compared with the engine's.
QUIET = {MATCHA: {"noise_scale": 0.0}, MELO: {"noise_scale": 0.0, "noise_scale_w": 0.0}, KOKORO: {}}


def release_archive(folder: Path, into: Path, without: tuple[str, ...] = ()) -> Path:
    """The folder packed as the release archive is: one top-level folder, .tar.bz2."""
    archive = into / f"{folder.name}.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        for path in sorted(folder.rglob("*")):
            if path.name not in without:
                tar.add(path, arcname=f"{folder.name}/{path.relative_to(folder)}")
    return archive


@pytest.fixture(scope="module")
def installed(sherpa_folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three families installed as a user would: Matcha from its archive with the vocoder
    downloaded apart, MeloTTS from its archive, Kokoro from an unpacked folder."""
    downloads, voices = tmp_path_factory.mktemp("downloads"), tmp_path_factory.mktemp("voices")
    matcha = release_archive(sherpa_folders["matcha"], downloads, without=("vocos-22khz-univ.onnx", "hifigan_v2.onnx"))
    vocoder = shutil.copy2(sherpa_folders["matcha"] / "vocos-22khz-univ.onnx", downloads)
    assert main(["install", str(matcha), "--vocoder", str(vocoder), "--to", str(voices)]) == 0
    assert main(["install", str(release_archive(sherpa_folders["melo"], downloads)), "--to", str(voices)]) == 0
    assert main(["install", str(sherpa_folders["kokoro"]), "--to", str(voices)]) == 0
    for name, options in QUIET.items():
        set_options(voices / name, options)
    return voices


def test_install_writes_a_manifest_the_server_reads(installed: Path) -> None:
    matcha, melo, kokoro = (read_manifest(installed / name / "voice.json") for name in (MATCHA, MELO, KOKORO))
    assert (matcha.engine, matcha.sample_rate, matcha.languages) == ("matcha", 22050, ("zh_CN", "zh"))
    assert matcha.files["vocoder"] == "vocos-22khz-univ.onnx" and (installed / MATCHA / "vocos-22khz-univ.onnx").is_file()
    assert "non-commercial" in matcha.license
    assert (melo.engine, melo.sample_rate, melo.languages[-1], melo.license) == ("vits", 44100, "en", "MIT license")
    assert (kokoro.engine, kokoro.sample_rate) == ("kokoro", 24000)
    assert [s.name for s in kokoro.speakers] == list(KOKORO_SPEAKERS)
    assert kokoro.files["lexicon"] == "lexicon-zh.txt,lexicon-us-en.txt"
    assert not list(installed.glob(".installing-*"))  # no scratch left behind


def test_list_shows_family_languages_speakers_and_rate(installed: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "wyoming_indextts.voices", "list", "--data-dir", str(installed)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert lines[KOKORO].split()[1:4] == ["kokoro", "zh_CN,zh,en_US,en", "24000"]
    assert "zf_001, zf_002, zm_009" in lines[KOKORO]
    assert lines[MATCHA].split()[1:4] == ["matcha", "zh_CN,zh", "22050"]
    assert lines[MELO].split()[1:4] == ["vits", "zh_CN,zh,en_US,en", "44100"]
    assert "zh_CN-baker" in lines and "espeak-ng" in lines  # the voices that were there before


def test_an_unpacked_folder_without_manifest_is_found_as_it_is(sherpa_folders: dict[str, Path], tmp_path: Path) -> None:
    shutil.copytree(sherpa_folders["melo"], tmp_path / MELO)
    shutil.copytree(sherpa_folders["matcha"], tmp_path / "broken")
    (tmp_path / "broken" / "lexicon.txt").unlink()
    found = discover_voices([tmp_path], packages=False, espeak=False)
    assert [(v.name, v.engine) for v in found.voices] == [(MELO, "vits")]
    assert [(f.name, "no lexicon.txt" in f.reason) for f in found.failures] == [("broken", True)]


def broken_copy(source: Path, tmp_path: Path, remove: str = "", truncate: str = "", drop_metadata: str = "") -> Path:
    folder = shutil.copytree(source, tmp_path / source.name)
    if remove:
        (folder / remove).unlink()
    if truncate:
        data = (folder / truncate).read_bytes()
        (folder / truncate).write_bytes(data[: len(data) // 2])
    if drop_metadata:
        model_path = next(folder.glob("model*.onnx"))
        model = onnx.load(str(model_path))
        kept = [p for p in model.metadata_props if p.key != drop_metadata]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        onnx.save(model, str(model_path))
    return folder


@pytest.mark.parametrize(("family", "change", "message"), [
    ("matcha", {"remove": "tokens.txt"}, "no tokens.txt"),
    ("matcha", {"remove": "lexicon.txt"}, "no lexicon.txt"),
    ("kokoro", {"truncate": "voices.bin"}, "voices.bin: 783360 bytes, expected 1566720"),
    ("matcha", {"drop_metadata": "pad_id"}, "metadata lacks pad_id"),
    ("melo", {"drop_metadata": "comment"}, "metadata lacks comment"),
])
def test_install_says_what_is_wrong(sherpa_folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    family: str, change: dict[str, str], message: str) -> None:
    folder = broken_copy(sherpa_folders[family], tmp_path / "download", **change)
    assert main(["install", str(folder), "--to", str(tmp_path / "voices")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "voices" / folder.name).exists()


def test_a_matcha_model_without_its_vocoder_is_refused_with_the_way_to_get_one(sherpa_folders: dict[str, Path], tmp_path: Path) -> None:
    archive = release_archive(sherpa_folders["matcha"], tmp_path, without=("vocos-22khz-univ.onnx", "hifigan_v2.onnx"))
    with pytest.raises(InstallError, match="needs a vocoder.*vocos-22khz-univ.onnx.*--vocoder"):
        install(archive, tmp_path / "voices")


def test_install_refuses_to_overwrite_without_force(sherpa_folders: dict[str, Path], tmp_path: Path) -> None:
    install(sherpa_folders["kokoro"], tmp_path, load=False)
    with pytest.raises(InstallError, match="exists; use --force"):
        install(sherpa_folders["kokoro"], tmp_path, load=False)
    assert install(sherpa_folders["kokoro"], tmp_path, load=False, force=True).path == tmp_path / KOKORO


def test_install_refuses_an_archive_reaching_outside_its_folder(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.bz2"
    (tmp_path / "tokens.txt").write_text("a 0\n", encoding="utf-8")
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(tmp_path / "tokens.txt", arcname="../tokens.txt")
    with pytest.raises(InstallError, match="refusing the archive member"):
        install(archive, tmp_path / "voices")


@pytest.fixture(scope="module")
def server(installed: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    proc = start_server(tmp_path_factory.mktemp("sherpa-server"), "--data-dir", str(installed), "--max-workers", "2", timeout=120)
    yield proc
    stop_server(proc)


async def test_describe_lists_the_installed_voices_with_their_speakers(server) -> None:  # type: ignore[no-untyped-def]
    info = (await exchange(server.port, Describe().event(), until=("info",), timeout=10)).first("info")
    voices = {v["name"]: v for program in info.data["tts"] for v in program["voices"]}
    assert {MATCHA, MELO, KOKORO} <= set(voices)
    assert [s["name"] for s in voices[KOKORO]["speakers"]] == list(KOKORO_SPEAKERS)
    assert "en" in voices[MELO]["languages"] and "en" not in voices[MATCHA]["languages"]


@pytest.mark.parametrize(("voice", "speaker", "text"), [
    (MATCHA, None, "客厅的灯已经打开了，空调温度调到二十六度。"),
    (MELO, None, "打开Siri查天气。"),
    (KOKORO, "zm_009", "我说hello world。"),
])
async def test_each_family_speaks_through_the_wyoming_door(server, installed: Path, voice: str, speaker: str | None, text: str) -> None:  # type: ignore[no-untyped-def]
    """The door's audio is the engine's own (English inside goes to the voice itself, not to
    the English voice), at the voice's rate."""
    request = Synthesize(text=text, voice=SynthesizeVoice(name=voice, speaker=speaker)).event()
    received = await exchange(server.port, request)
    assert received.types[0] == "audio-start" and received.types[-1] == "audio-stop"
    engine = load_engine(read_manifest(installed / voice / "voice.json"))
    (sentence,) = Frontend().sentences(text)
    # The server speaks a long first sentence's head first (synthesis.py): so do we here.
    expected = np.concatenate([audio for part in split_head(sentence)
                               for audio in engine.synthesize(part, SynthesisConfig(speaker=speaker), threading.Event())])
    assert received.rate == engine.sample_rate
    assert len(received.audio) == len(expected)
    assert np.abs(received.audio - expected).max() < 2e-3  # 16-bit PCM
