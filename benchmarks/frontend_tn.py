"""Text-normalization accuracy on a TSV of `input<TAB>reading|reading…` (punctuation and spaces ignored).

    python benchmarks/frontend_tn.py [../shared/data/tn/zh_dev.tsv]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from wyoming_indextts.frontend.normalize import normalize_zh

DEFAULT_TSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "tn" / "zh_dev.tsv"
_IGNORED = re.compile(r"[\s，。！？、：；,.!?:;“”\"'（）()]")


def same_reading(output: str, reference: str) -> bool:
    return _IGNORED.sub("", output) == _IGNORED.sub("", reference)


def evaluate(tsv: Path) -> dict[str, object]:
    rows = [line.rstrip("\n").split("\t") for line in tsv.read_text(encoding="utf-8").splitlines() if line.strip()]
    failures: list[tuple[str, str, str]] = []
    started = time.perf_counter()
    outputs = [normalize_zh(text) for text, _ in rows]
    elapsed = time.perf_counter() - started
    for (text, references), output in zip(rows, outputs):
        if not any(same_reading(output, r) for r in references.split("|")):
            failures.append((text, output, references.split("|")[0]))
    return {
        "n": len(rows),
        "accuracy": 1 - len(failures) / len(rows),
        "ms_per_sentence": elapsed / len(rows) * 1000,
        "failures": failures,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tsv", nargs="?", type=Path, default=DEFAULT_TSV, help="input<TAB>reading|reading… per line (default: %(default)s)")
    result = evaluate(parser.parse_args().tsv)
    print(f"TN: {result['accuracy']:.1%} of {result['n']} sentences exactly right, {result['ms_per_sentence']:.3f} ms/sentence")
    for text, output, wanted in result["failures"]:  # type: ignore[union-attr]
        print(f"  {text} -> {output} (want {wanted})")
