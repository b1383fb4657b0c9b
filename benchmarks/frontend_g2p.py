"""Chinese G2P accuracy: polyphones on CPP dev, spoken tones on Biaobei (Baker) held-out labels.

    python benchmarks/frontend_g2p.py [--data ../shared/data]

``evaluate_cpp``: accuracy on the marked polyphone (its dictionary reading, before tone sandhi,
as CPP labels it) and milliseconds per sentence for the whole G2P of the sentence.
``evaluate_baker``: syllable error rate, tone included, against the surface pinyin (sandhi,
neutral tones and erhua as spoken) of utterances in ``ids_range``. Default part: 008001–009000.
It is in-sample: the spoken-tone files (erhua and neutral-tone lists, tone corrector) learn from
000001–009000. Blind figures come from rebuilding them from 000001–008000 (tools/train_tones.py);
docs/BENCHMARKS.md quotes them.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wyoming_indextts.frontend.g2p_zh import G2PZh  # noqa: E402
from wyoming_indextts.frontend.sentence import is_hanzi  # noqa: E402

DATA = REPO.parent / "shared" / "data"
HELD_OUT = (8001, 9000)  # held out from the prosody model and polyphone fine-tune, not the tone files
_MARK = re.compile(r"#\d")


def read_cpp(dev_sent: Path, dev_lb: Path) -> list[tuple[str, int, str]]:
    """(sentence, index of the polyphone, label with ü as v)."""
    items = []
    for sentence, label in zip(dev_sent.read_text(encoding="utf-8").splitlines(),
                               dev_lb.read_text(encoding="utf-8").splitlines()):
        before, char, after = sentence.split("\u2581")
        items.append((before + char + after, len(before), label.strip().replace("u:", "v")))
    return items


def read_baker(labels_path: Path, ids_range: tuple[int, int] | None = None) -> Iterator[tuple[str, str, list[str]]]:
    """(id, text with #marks, surface syllables) for utterances whose number is in ``ids_range``."""
    lines = labels_path.read_text(encoding="utf-8-sig").splitlines()
    for head, pinyin in zip(lines[0::2], lines[1::2]):
        uid, _, text = head.partition("\t")
        if ids_range and not ids_range[0] <= int(uid) <= ids_range[1]:
            continue
        yield uid, text.strip(), pinyin.split()


def _pypinyin_g2p(tone_sandhi: bool) -> Callable[[str], list[str]]:
    from pypinyin import Style, lazy_pinyin

    def g2p(text: str) -> list[str]:
        out = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=tone_sandhi,
                          errors=lambda chars: ["" for _ in chars])
        return [p if p[-1:].isdigit() else p + "5" for p in out if p]
    return g2p


def _ours_citation(g2p: G2PZh) -> Callable[[str, int], str]:
    return lambda text, index: g2p.citation(text)[index]


def read_everyday(path: Path) -> list[tuple[str, int, str]]:
    """``benchmarks/data/zh_everyday_polyphones.tsv``: sentence, the polyphone (its first
    occurrence), its reading, tab-separated; as :func:`read_cpp` gives them."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            text, char, label = line.split("\t")
            items.append((text, text.index(char), label))
    return items


def evaluate_cpp(dev_sent: Path, dev_lb: Path, system: str = "ours", subset: slice = slice(None)) -> dict:
    """Accuracy on the marked polyphones and ms per sentence (whole-sentence G2P)."""
    return evaluate_polyphones(read_cpp(dev_sent, dev_lb)[subset], system)


def evaluate_polyphones(items: list[tuple[str, int, str]], system: str = "ours") -> dict:
    """Accuracy on (sentence, index, reading) items and ms per sentence (whole-sentence G2P)."""
    if system == "ours":
        g2p = G2PZh()
        g2p("预热")
        predict = lambda text, index: g2p.citation(text)[index]  # noqa: E731
    else:
        plain = _pypinyin_g2p(False)
        from pypinyin import Style, lazy_pinyin

        def predict(text: str, index: int) -> str:
            out = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
            # lazy_pinyin keeps non-Chinese runs as one item: map back per character.
            chars = _expand(text, out)
            return chars[index]
        del plain
    correct = 0
    start = time.perf_counter()
    for text, index, label in items:
        correct += predict(text, index) == label
    elapsed = time.perf_counter() - start
    if system == "ours":
        # Time the full spoken-tone G2P too (what the server runs per sentence).
        start = time.perf_counter()
        for text, _, _ in items:
            g2p(text)
        elapsed = time.perf_counter() - start
    return {"system": system, "sentences": len(items), "accuracy": correct / len(items),
            "ms_per_sentence": 1000 * elapsed / len(items)}


def _expand(text: str, out: list[str]) -> list[str]:
    result: list[str] = []
    k = 0
    i = 0
    while i < len(text):
        if is_hanzi(text[i]):
            p = out[k]
            result.append(p if p[-1:].isdigit() else p + "5")
            k += 1
            i += 1
        else:
            j = i
            while j < len(text) and not is_hanzi(text[j]):
                j += 1
            result.extend([""] * (j - i))
            k += 1
            i = j
    return result


def baker_items(labels_path: Path, ids_range: tuple[int, int]) -> tuple[list[tuple[str, list[str]]], int]:
    """(Chinese characters only, surface syllables) pairs, and the number skipped.

    Skipped: utterances whose character count differs from the syllable count without erhua
    explaining it, or with non-Chinese characters left after removing marks and punctuation.
    Utterances with erhua (``huar4`` for 花儿) are kept: our G2P merges 儿 the same way.
    """
    items = []
    skipped = 0
    for _, text, syllables in read_baker(labels_path, ids_range):
        plain = _MARK.sub("", text)
        chars = "".join(c for c in plain if is_hanzi(c))
        leftover = [c for c in plain if c.isalnum() and not is_hanzi(c)]
        erhua = sum(1 for s in syllables if re.fullmatch(r"[a-z]+r[1-5]", s) and not s.startswith("er"))
        if leftover or len(chars) - erhua != len(syllables):
            skipped += 1
            continue
        items.append((plain, syllables))
    return items, skipped


def evaluate_baker(labels_path: Path, ids_range: tuple[int, int] = HELD_OUT, system: str = "ours",
                   errors: list | None = None) -> dict:
    """Syllable error rate (tone included) against the surface pinyin; utterances whose length
    we get wrong (an erhua decision that differs) count every syllable of theirs as wrong."""
    items, skipped = baker_items(labels_path, ids_range)
    if system in ("ours", "rules"):
        # "rules": tone_sandhi alone, without the trained tone corrector.
        g2p = G2PZh(correct_tones=system == "ours")
        predict = lambda text: [r.pinyin[0] for r in g2p(text) if is_hanzi(r.char)]  # noqa: E731
    else:
        predict = _pypinyin_g2p(system == "pypinyin+sandhi")
    wrong = total = length_mismatch = mismatch_syllables = 0
    for text, syllables in items:
        ours = [p.replace("ü", "v") for p in predict(text)]
        total += len(syllables)
        if len(ours) != len(syllables):
            length_mismatch += 1
            wrong += len(syllables)
            mismatch_syllables += len(syllables)
            continue
        bad = [k for k, (a, b) in enumerate(zip(ours, syllables)) if a != b]
        wrong += len(bad)
        if errors is not None and bad:
            errors.append((text, ours, syllables, bad))
    return {"system": system, "utterances": len(items), "skipped": skipped, "syllables": total,
            "length_mismatch": length_mismatch, "mismatch_syllables": mismatch_syllables, "ser": wrong / total}


# Error categories, in the order they are tested (first match wins).
CATEGORIES = ("length (erhua)", "syllable (polyphone)", "一/不", "missed neutral", "spurious neutral",
              "3-3 missed inside word", "3-3 missed across words", "3-3 wrongly applied", "other tone")


def categorize(g2p: G2PZh, text: str, ours: list[str], theirs: list[str], bad: list[int]) -> list[str]:
    """One category per wrong syllable (see CATEGORIES); ``ours``/``theirs`` have equal length."""
    hanzi = [c for c in text if is_hanzi(c)]
    citation = [p for p, c in zip(g2p.citation(text), text) if is_hanzi(c)]
    starts = [r.word_start for r in g2p(text) if is_hanzi(r.char)]
    out = []
    for k in bad:
        a, b = ours[k], theirs[k]
        if a[:-1] != b[:-1]:
            out.append("syllable (polyphone)")
        elif hanzi[k] in "一不":
            out.append("一/不")
        elif b[-1] == "5":
            out.append("missed neutral")
        elif a[-1] == "5":
            out.append("spurious neutral")
        elif a[-1] == "3" and b[-1] == "2":
            same_word = k + 1 < len(starts) and not starts[k + 1]
            out.append("3-3 missed inside word" if same_word else "3-3 missed across words")
        elif a[-1] == "2" and b[-1] == "3" and citation[k][-1:] == "3":
            out.append("3-3 wrongly applied")
        else:
            out.append("other tone")
    return out


def error_breakdown(labels_path: Path, ids_range: tuple[int, int], system: str = "ours") -> tuple[dict, dict[str, int], list]:
    """SER result, wrong syllables per category (length mismatches count all their syllables),
    and (category, text, ours, theirs, index) for every wrong syllable."""
    errors: list = []
    result = evaluate_baker(labels_path, ids_range, system, errors)
    g2p = G2PZh()
    counts = dict.fromkeys(CATEGORIES, 0)
    counts["length (erhua)"] = result.get("mismatch_syllables", 0)
    examples = []
    for text, ours, theirs, bad in errors:
        for k, category in zip(bad, categorize(g2p, text, ours, theirs, bad)):
            counts[category] += 1
            examples.append((category, text, ours, theirs, k))
    return result, counts, examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--ids", default=f"{HELD_OUT[0]}-{HELD_OUT[1]}", help="Baker utterance range, e.g. 8001-9000")
    parser.add_argument("--errors", action="store_true", help="only the Baker error breakdown by category")
    args = parser.parse_args()
    low, high = (int(x) for x in args.ids.split("-"))
    if args.errors:
        for system in ("rules", "ours"):
            result, counts, _ = error_breakdown(args.data / "baker" / "prosody_labels_000001-009000.txt", (low, high), system)
            print(f"Baker {low:06d}-{high:06d} {system} SER {result['ser']:.2%} over {result['syllables']} syllables")
            for category, n in counts.items():
                print(f"  {category:26s} {n:5d}  {n / result['syllables']:.2%}")
        return
    cpp = args.data / "cpp"
    baker = args.data / "baker" / "prosody_labels_000001-009000.txt"
    for system in ("pypinyin", "ours"):
        r = evaluate_cpp(cpp / "dev.sent", cpp / "dev.lb", system)
        print(f"CPP dev   {system:16s} accuracy {r['accuracy']:.2%} over {r['sentences']} sentences"
              + (f", {r['ms_per_sentence']:.2f} ms/sentence (full G2P)" if system == "ours" else ""))
    for system in ("pypinyin", "pypinyin+sandhi", "rules", "ours"):
        r = evaluate_baker(baker, (low, high), system)
        print(f"Baker {low:06d}-{high:06d} {system:16s} SER {r['ser']:.2%} over {r['syllables']} syllables,"
              f" {r['utterances']} utterances ({r['skipped']} skipped, {r['length_mismatch']} with a different"
              " syllable count, counted all wrong)")


if __name__ == "__main__":
    main()
