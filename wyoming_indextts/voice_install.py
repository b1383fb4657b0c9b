"""``python -m wyoming_indextts.voices install|list``: put a downloaded model where the server
finds it, and show what it will load.

``install`` takes a model archive as sherpa-onnx's releases publish it (``.tar.bz2``) or an
unpacked folder, checks it (files, graph inputs and outputs, ONNX metadata, and then loads and
runs it once, as the server would), and moves it into a voice folder with a ``voice.json`` that
records what was found, so the server reads no graph to list it. Where it goes: ``--to``, else
``/share/indextts`` when that exists (the Home Assistant add-on's and the Docker image's voice
folder), else ``./models`` (searched by a server started in this folder).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .engines import load_engine
from .engines.base import EngineError, VoiceInfo
from .engines.sherpa_folder import ModelFolderError, describe, inspect_folder
from .voices import MANIFEST, discover_voices

ADDON_FOLDER = Path("/share/indextts")
ARCHIVE_SUFFIXES = (".tar.bz2", ".tar.gz", ".tgz", ".tar", ".tar.xz")


class InstallError(Exception):
    """What the user must fix, said plainly."""


def default_target() -> Path:
    return ADDON_FOLDER if ADDON_FOLDER.is_dir() else Path.cwd() / "models"


def search_folders(extra: Sequence[Path] = ()) -> list[Path]:
    """The folders a server started here searches (as ``__main__`` sets them up), add-on folder first."""
    from .__main__ import default_model_dirs

    folders = [*extra, *([ADDON_FOLDER] if ADDON_FOLDER.is_dir() else []), *default_model_dirs()]
    unique: list[Path] = []
    for folder in folders:
        if folder.resolve() not in [u.resolve() for u in unique]:
            unique.append(folder)
    return unique


def manifest(info: VoiceInfo) -> dict[str, Any]:
    """``voice.json`` for a described folder (the format :func:`voices.read_manifest` reads)."""
    return {
        "name": info.name,
        "engine": info.engine,
        "languages": list(info.languages),
        "sample_rate": info.sample_rate,
        "description": info.description,
        "version": info.version,
        "license": info.license,
        "attribution": {"name": info.attribution_name, "url": info.attribution_url},
        "speakers": [{"name": s.name, "id": s.id} for s in info.speakers],
        "files": info.files,
        "options": info.options,
    }


def _unpack(archive: Path, into: Path) -> Path:
    """Extract safely (no paths outside ``into``, no links out) and return the model folder in it."""
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                target = (into / member.name).resolve()
                if not target.is_relative_to(into.resolve()) or member.islnk() or member.issym() or member.isdev():
                    raise InstallError(f"{archive.name}: refusing the archive member {member.name!r} (outside the folder or a link)")
            if hasattr(tarfile, "data_filter"):  # Python ≥ 3.11.4: let tarfile refuse what we check above, too
                tar.extractall(into, filter="data")
            else:
                tar.extractall(into)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise InstallError(f"{archive}: not a readable archive ({err})") from err
    folders = sorted({p.parent for p in into.rglob("tokens.txt")}, key=lambda p: len(p.parts))
    if not folders:
        raise InstallError(f"{archive.name}: no tokens.txt inside (is this a sherpa-onnx TTS model archive?)")
    return folders[0]


def install(source: Path, target_dir: Path, vocoder: Path | None = None, name: str | None = None,
            force: bool = False, load: bool = True) -> VoiceInfo:
    """Check ``source`` and install it as ``target_dir/NAME``; returns the installed voice."""
    if not source.exists():
        raise InstallError(f"{source} does not exist")
    if vocoder is not None and not vocoder.is_file():
        raise InstallError(f"{vocoder} does not exist")
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".installing-", dir=target_dir) as scratch:
        staging = Path(scratch) / "voice"
        if source.is_dir():
            found = source
            shutil.copytree(source, staging)
        elif source.name.endswith(ARCHIVE_SUFFIXES):
            found = _unpack(source, Path(scratch) / "unpacked")
            found.rename(staging)
        else:
            raise InstallError(f"{source}: expected a model folder or a {'/'.join(ARCHIVE_SUFFIXES)} archive")
        if vocoder is not None:
            shutil.copy2(vocoder, staging / vocoder.name)
        try:
            info = describe(inspect_folder(staging, staging / vocoder.name if vocoder else None), name or found.name)
        except ModelFolderError as err:
            raise InstallError(str(err).replace(str(staging), found.name)) from None
        if load:
            try:
                load_engine(info).warm_up()
            except Exception as err:  # noqa: BLE001 — whatever the model does, say so and stop
                raise InstallError(f"{found.name}: the voice does not load: {type(err).__name__}: {err}") from err
        destination = target_dir / info.name
        if destination.exists():
            if not force:
                raise InstallError(f"{destination} exists; use --force to replace it")
            shutil.rmtree(destination)
        (staging / MANIFEST).write_text(json.dumps(manifest(info), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        staging.rename(destination)
    return replace(info, path=destination)


def describe_line(info: VoiceInfo) -> str:
    speakers = ", ".join(s.name for s in info.speakers[:4]) + (f", … ({len(info.speakers)})" if len(info.speakers) > 4 else "")
    return (f"{info.name:<28} {info.engine:<11} {','.join(info.languages):<22} {info.sample_rate:>6} Hz  "
            f"{speakers or '-':<30} {info.path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wyoming_indextts.voices", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("install", help="check a downloaded model (archive or folder) and install it as a voice")
    add.add_argument("source", type=Path, help="e.g. matcha-icefall-zh-baker.tar.bz2, or an unpacked folder")
    add.add_argument("--vocoder", type=Path, help="the vocoder a Matcha model needs (e.g. vocos-22khz-univ.onnx), copied in")
    add.add_argument("--to", type=Path, help=f"voice folder to install into (default: {ADDON_FOLDER} if it exists, else ./models)")
    add.add_argument("--name", help="voice name (default: the model's folder name)")
    add.add_argument("--force", action="store_true", help="replace an installed voice of the same name")
    add.add_argument("--no-load", action="store_true", help="check files and metadata only; do not load and run the model")
    show = commands.add_parser("list", help="list the voices a server started here would find")
    show.add_argument("--data-dir", action="append", default=[], type=Path, help="extra voice folder, as the server's --data-dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.command == "install":
        target = args.to or default_target()
        try:
            info = install(args.source, target, args.vocoder, args.name, args.force, load=not args.no_load)
        except (InstallError, EngineError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"Installed {info.name} ({info.engine}, {', '.join(info.languages)}, {info.sample_rate} Hz"
              f"{', %d speakers' % len(info.speakers) if info.speakers else ''}) in {info.path}")
        searched = [f.resolve() for f in search_folders()]
        if target.resolve() not in searched:
            print(f"Start the server with --data-dir {target} to use it.")
        return 0

    discovery = discover_voices(search_folders(args.data_dir))
    print(f"{'voice':<28} {'family':<11} {'languages':<22} {'rate':>9}  {'speakers':<30} path")
    for info in discovery.voices:
        print(describe_line(info))
    for failure in discovery.failures:
        print(f"not loadable: {failure.name} ({failure.path}): {failure.reason}")
    return 0
