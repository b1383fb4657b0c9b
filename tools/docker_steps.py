#!/usr/bin/env python3
"""Replay the Dockerfile on this machine, without a Docker engine.

    python tools/docker_steps.py ROOT [--context DIR]

Reads the Dockerfile itself (no copy of its commands that could drift) and goes through
its instructions in order, with the image's paths moved under ROOT:

  ARG, ENV, SHELL, WORKDIR   set up the environment the build would have;
  COPY                       copies from the build context, leaving out .dockerignore's
                             entries; the paths inside copied scripts are moved under ROOT too;
  RUN                        runs the command with the image's paths moved under ROOT, except
                             `apt-get` steps: those only check, with dpkg-query, that the
                             packages they install are installed here (this host must be a
                             Debian like the base image; it installs nothing system-wide);
  EXPOSE, HEALTHCHECK,
  ENTRYPOINT, CMD            are kept for the start.

Then it starts the container's main process as `docker run -p PORT:10200 IMAGE` would
(ENTRYPOINT + CMD, no Home Assistant Supervisor), runs the HEALTHCHECK command until it
passes (a real `describe` round trip), describes the server once more to list its voices,
and sends SIGTERM as `docker stop` does: the server must exit 0 within 2 s.

Exit code 0 when every step passed. What is not replayed: the base image itself (s6-overlay,
bashio: tests/test_addon.py runs the s6 scripts with a stand-in for bashio) and the apt-get
install (checked, see above).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# The paths the image owns. Each is moved under ROOT wherever it appears in a command or a
# copied script; anything else (/bin/bash, /var/lib/apt/lists, ...) is the host's own.
IMAGE_PATHS = (
    "/opt/venv",
    "/usr/src/wyoming-indextts",
    "/usr/local/bin/indextts-entrypoint",
    "/etc/s6-overlay",
    "/share",
    "/data",
)
CONTAINER_PORT = 10200
# The PATH of Debian base images (and of `docker run` when the image sets none).
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STOP_SECONDS = 2.0


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Image:
    root: Path
    context: Path
    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    shell: list[str] = field(default_factory=lambda: ["/bin/sh", "-c"])
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    exposed: list[str] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined; comments and blank lines dropped."""
    instructions: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # a comment inside a continued instruction
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, args = pending.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    if pending:
        raise ValueError(f"Dockerfile ends inside an instruction (line {start})")
    return instructions


def image_path_pattern() -> re.Pattern[str]:
    alternatives = "|".join(re.escape(p) for p in sorted(IMAGE_PATHS, key=len, reverse=True))
    return re.compile(rf"(?<![\w.~/-])(?:{alternatives})(?=$|[/\s\"'`;:|&)>])")


def remap(text: str, root: Path) -> str:
    return image_path_pattern().sub(lambda m: f"{root}{m.group(0)}", text)


def host_path(image: Image, path: str) -> Path:
    """Where an image path lives on this machine."""
    absolute = path if path.startswith("/") else f"{image.workdir.rstrip('/')}/{path}"
    return image.root / os.path.normpath(absolute).lstrip("/")


def expand(image: Image, text: str) -> str:
    """${VAR} and $VAR from ARG and ENV, as the builder substitutes them in instructions."""
    values = {**image.args, **image.env}
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def exec_form(args: str) -> list[str]:
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list)
        return [str(v) for v in value]
    return ["/bin/sh", "-c", args]


def key_values(args: str) -> dict[str, str]:
    pairs = {}
    for token in shlex.split(args):
        key, sep, value = token.partition("=")
        if not sep:
            raise ValueError(f"only KEY=VALUE forms are supported, got {token!r}")
        pairs[key] = value
    return pairs


class DockerIgnore:
    def __init__(self, context: Path) -> None:
        path = context / ".dockerignore"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        self.patterns = [line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")]
        if any(p.startswith("!") for p in self.patterns):
            raise ValueError(".dockerignore exceptions (!) are not supported here")

    def ignored(self, relative: str) -> bool:
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pattern in self.patterns:
            anywhere = pattern.startswith("**/")
            for prefix in prefixes:
                if fnmatch.fnmatchcase(prefix, pattern):
                    return True
                if anywhere and fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], pattern[3:]):
                    return True
        return False


def copy(image: Image, args: str, ignore: DockerIgnore) -> None:
    *sources, destination = shlex.split(expand(image, args))
    if any(s.startswith("--") for s in sources):
        raise ValueError(f"COPY options are not supported here: {args}")
    target = host_path(image, destination)
    into_folder = destination.endswith("/") or len(sources) > 1
    for source in sources:
        origin = image.context / source
        if origin.is_dir():
            for path in sorted(origin.rglob("*")):
                relative = path.relative_to(image.context).as_posix()
                if path.is_dir() or ignore.ignored(relative):
                    continue
                _copy_file(image, path, target / path.relative_to(origin))
        else:
            if ignore.ignored(source):
                raise ValueError(f"COPY {source}: the file is in .dockerignore")
            _copy_file(image, origin, target / origin.name if into_folder else target)


def _copy_file(image: Image, source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    if data.startswith(b"#!"):  # a script: the paths it names move under ROOT too
        data = remap(data.decode("utf-8"), image.root).encode("utf-8")
    target.write_bytes(data)
    shutil.copymode(source, target)


def check_apt(command: str) -> None:
    """`apt-get install ... PACKAGES`: every package must be installed on this machine."""
    match = re.search(r"apt-get install ([^&;|]+)", command)
    packages = [p for p in (match.group(1).split() if match else []) if not p.startswith("-")]
    if not shutil.which("dpkg-query"):
        raise SystemExit("apt-get step: this machine has no dpkg-query (not a Debian); cannot check it")
    missing = []
    for package in packages:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False)
        if "install ok installed" not in status.stdout:
            missing.append(package)
    if missing:
        raise SystemExit(f"apt-get step: not installed here: {' '.join(missing)} (apt-get install -y {' '.join(missing)})")
    print(f"    checked, not run: {' '.join(packages)} installed here")


def build(image: Image, instructions: list[Instruction]) -> None:
    ignore = DockerIgnore(image.context)
    for number, instruction in enumerate(instructions, 1):
        keyword, args = instruction.keyword, instruction.args
        print(f"Step {number}/{len(instructions)} : {keyword} {args}"[:300], flush=True)
        if keyword == "ARG":
            name, _, default = args.partition("=")
            image.args[name] = default
        elif keyword == "FROM":
            print("    base image not replayed: this host stands in for it")
        elif keyword == "SHELL":
            image.shell = exec_form(args)
        elif keyword == "ENV":
            image.env.update({k: expand(image, v) for k, v in key_values(args).items()})
        elif keyword == "WORKDIR":
            image.workdir = expand(image, args)
            host_path(image, ".").mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            copy(image, args, ignore)
        elif keyword == "RUN":
            command = expand(image, args)
            if command.startswith("["):
                raise ValueError("exec-form RUN is not supported here")
            if re.match(r"\s*apt-get\b", command):
                check_apt(command)
                continue
            subprocess.run([*image.shell, remap(command, image.root)], cwd=host_path(image, "."), env=environment(image), check=True)
        elif keyword == "EXPOSE":
            image.exposed += args.split()
        elif keyword == "HEALTHCHECK":
            _, _, command = args.partition("CMD ")
            image.healthcheck = exec_form(command.strip())
        elif keyword == "ENTRYPOINT":
            image.entrypoint = exec_form(args)
        elif keyword == "CMD":
            image.cmd = exec_form(args)
        else:
            raise ValueError(f"line {instruction.line}: {keyword} is not replayed by this tool; teach it")


def environment(image: Image) -> dict[str, str]:
    """The host's environment (certificates, proxies, pip settings) with the image's PATH and ENV;
    nothing of a Python environment this tool may itself run in, and no Supervisor."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "SUPERVISOR_TOKEN")}
    env["PATH"] = IMAGE_PATH
    env.update(image.env)
    return env


def start(image: Image, port: int) -> int:
    """`docker run -p PORT:10200 IMAGE`, then HEALTHCHECK, describe, `docker stop`."""
    if f"{CONTAINER_PORT}" not in " ".join(image.exposed):
        raise SystemExit(f"the Dockerfile does not EXPOSE {CONTAINER_PORT}")
    # The container's port is free inside its own network namespace; here it may not be,
    # so the server listens on PORT instead (a flag after the image name, as docker run passes it).
    command = [remap(part, image.root) for part in image.entrypoint + image.cmd] + ["--uri", f"tcp://127.0.0.1:{port}"]
    health = [remap(part, image.root).replace(f":{CONTAINER_PORT}", f":{port}") for part in image.healthcheck]
    print(f"Start: {shlex.join(command)}", flush=True)
    env = environment(image)
    server = subprocess.Popen(command, cwd=host_path(image, "."), env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with {server.returncode} before it was healthy")
            if subprocess.run(health, env=env, timeout=30, check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise SystemExit("HEALTHCHECK did not pass within 120 s")
            time.sleep(1)
        print(f"HEALTHCHECK passed: {shlex.join(health)}", flush=True)
        python = health[0]  # the image's interpreter
        voices = subprocess.run([python, "-c", _DESCRIBE, str(port)], env=env, capture_output=True, text=True, timeout=30, check=True)
        print(f"describe: {voices.stdout.strip()}", flush=True)
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait(10)
        elapsed = time.monotonic() - started
        print(f"SIGTERM (docker stop): exit code {code} after {elapsed:.2f} s", flush=True)
        if code != 0 or elapsed > STOP_SECONDS:
            raise SystemExit(f"docker stop: expected exit code 0 within {STOP_SECONDS:g} s")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return 0


_DESCRIBE = """
import asyncio, sys
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

async def main():
    async with AsyncTcpClient("127.0.0.1", int(sys.argv[1])) as client:
        await client.write_event(Describe().event())
        while (event := await client.read_event()) is not None:
            if Info.is_type(event.type):
                info = Info.from_event(event)
                print(", ".join(v.name for v in info.tts[0].voices))
                return
    sys.exit("no info")

asyncio.run(asyncio.wait_for(main(), 10))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="empty folder that stands for the image's /")
    parser.add_argument("--context", type=Path, default=Path(__file__).resolve().parent.parent, help="build context (default: this repository)")
    parser.add_argument("--port", type=int, default=0, help="host port for the server (default: a free one)")
    args = parser.parse_args()
    root = args.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        parser.error(f"{root} is not empty")
    context = args.context.resolve()
    image = Image(root=root, context=context)
    build(image, parse_dockerfile((context / "Dockerfile").read_text(encoding="utf-8")))
    return start(image, args.port or free_port())


if __name__ == "__main__":
    sys.exit(main())
