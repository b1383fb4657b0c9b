"""Whole front end per sentence and resident memory, for any checkout: compare two trees by
running this alternately in the same session.

    python benchmarks/frontend_time.py [TREE] [--data ../shared/data]

Prints one JSON line: the median ms of ``Frontend.analyze`` over Biaobei 008001–009000 and over
the first 1,000 CPP dev sentences (after one warm-up sentence), and the process's resident
memory after both, in MB. TREE (default: this checkout) goes first on ``sys.path``, so a
checkout of an older commit is measured with its own code and data.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rss_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def timing_sentences(data: Path) -> tuple[list[str], list[str]]:
    """The sentences timed: Biaobei 008001–009000 without its marks, the first 1,000 CPP dev."""
    lines = (data / "baker" / "prosody_labels_000001-009000.txt").read_text(encoding="utf-8-sig").splitlines()
    baker = [re.sub(r"#\d", "", head.split("\t")[1]) for head in lines[0::2] if 8001 <= int(head.split("\t")[0]) <= 9000]
    cpp = [line.replace("\u2581", "") for line in (data / "cpp" / "dev.sent").read_text(encoding="utf-8").splitlines()[:1000]]
    return baker, cpp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", nargs="?", type=Path, default=HERE.parent)
    parser.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    from wyoming_indextts.frontend.pipeline import Frontend

    frontend = Frontend()
    frontend.analyze("预热一下。")
    baker, cpp = timing_sentences(args.data)
    out: dict[str, object] = {"tree": str(args.tree)}
    for name, sentences in (("baker_ms", baker), ("cpp_ms", cpp)):
        times = []
        for sentence in sentences:
            started = time.perf_counter()
            frontend.analyze(sentence)
            times.append(time.perf_counter() - started)
        out[name] = round(1000 * statistics.median(times), 3)
    out["rss_mb"] = round(rss_mb(), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
