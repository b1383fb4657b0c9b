"""Write a benchmark's section into docs/BENCHMARKS.md between its own markers."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        onnx_version = subprocess.run(
            [sys.executable, "-c", "import onnxruntime; print(onnxruntime.__version__)"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        onnx_version = "?"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, onnxruntime {onnx_version}"


def write_section(name: str, body: str, command: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section ``name`` of ``path`` with a dated, attributed body."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\nMeasured by hand with the scripts in `benchmarks/`; each section says how.\n"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- {name}:start -->\n{body.rstrip()}\n\n"
        f"_Measured {stamp} on {machine()}. Command: `{command}`_\n<!-- {name}:end -->"
    )
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")
