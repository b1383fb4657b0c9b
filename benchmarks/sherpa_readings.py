"""Where our readings differ from what a downloaded model's own lexicon would make it say, and
who is right: ours, the lexicon's, against labelled speech.

    python benchmarks/sherpa_readings.py [--data ../shared/data] [--baker 8001-8400] [--cpp 400]

sherpa-onnx reads Chinese for the Matcha, MeloTTS and Kokoro releases by looking words up in
the model's ``lexicon.txt``: forward longest match over the lexicon's words (up to 10
characters, its PhraseMatcher), each character alone where no word matches. The lexicons were
generated from pypinyin by the upstream recipes, which this rebuilds for the words of the test
sentences (so the match is the full lexicon's):

* ``matcha`` (icefall baker_zh ``generate_lexicon.py``): ``lazy_pinyin(word, TONE3,
  tone_sandhi=True)`` per entry: sandhi inside a dictionary word only;
* ``melo`` (sherpa-onnx ``scripts/melo-tts/export-onnx.py``): pypinyin's readings, no sandhi.

(Kokoro's ``lexicon-zh.txt`` is misaki's per-word sandhi, close to ``matcha``'s; rebuilding it
needs misaki, so it is not listed.) Our readings are the front end's, as the engines speak them.

Gold: Biaobei's surface pinyin (tones as spoken) for ``--baker`` utterances, and CPP dev's
polyphone labels (dictionary readings, before sandhi) for the first ``--cpp`` sentences, against
our citation reading there. Biaobei 1-9000 trained our spoken-tone word lists and tone corrector,
so Baker figures are in-sample for us (docs/BENCHMARKS.md quotes the blind error rate).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from frontend_g2p import DATA, baker_items, read_cpp  # noqa: E402
from report import write_section  # noqa: E402

from wyoming_indextts.frontend.g2p_zh import G2PZh  # noqa: E402
from wyoming_indextts.frontend.sentence import is_hanzi  # noqa: E402

MAX_PHRASE = 10  # sherpa-onnx PhraseMatcher's max_search_len


def recipe(family: str) -> Callable[[str], list[str]]:
    """The upstream recipe's reading of one lexicon entry, TONE3 with 5 for the neutral tone."""
    from pypinyin import Style, lazy_pinyin

    sandhi = family == "matcha"

    @lru_cache(maxsize=None)
    def read(word: str) -> list[str]:
        out = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=sandhi)
        return [p.replace("ü", "v") for p in out]

    return read


def lexicon_reading(text: str, family: str) -> list[str]:
    """One reading per character of ``text`` ('' for non-Chinese), as sherpa-onnx's lexicon
    front end gives it: longest lexicon word first, else the character alone."""
    from pypinyin import phrases_dict

    read = recipe(family)
    out: list[str] = []
    i = 0
    while i < len(text):
        if not is_hanzi(text[i]):
            out.append("")
            i += 1
            continue
        end = min(len(text), i + MAX_PHRASE)
        while end > i + 1 and not (all(is_hanzi(c) for c in text[i:end]) and text[i:end] in phrases_dict.phrases_dict):
            end -= 1
        reading = read(text[i:end])
        out.extend(reading if len(reading) == end - i else [read(c)[0] for c in text[i:end]])
        i = end
    return out


def category(char: str, ours: str, lexicon: str) -> str:
    if ours[:-1] != lexicon[:-1]:
        return "polyphone (another syllable)"
    if char in "一不":
        return "一/不 sandhi"
    if "5" in (ours[-1], lexicon[-1]):
        return "neutral tone"
    if {ours[-1], lexicon[-1]} == {"2", "3"}:
        return "third-tone sandhi"
    return "other tone"


def compare_baker(items: list[tuple[str, list[str]]], family: str, g2p: G2PZh, examples: int = 3) -> dict[str, object]:
    """Per character of each utterance: ours vs lexicon; where they differ, which one the
    labels agree with. Characters merged by erhua (in ours or the labels) are left out."""
    counts: Counter[str] = Counter()
    by_category: dict[str, Counter[str]] = {}
    shown: dict[str, list[str]] = {}
    compared = 0
    for text, gold_syllables in items:
        readings = {r.index: r.pinyin[0].replace("ü", "v") for r in g2p(text) if is_hanzi(r.char) and r.pinyin}
        lexicon = lexicon_reading(text, family)
        gold = iter(gold_syllables)
        previous = ""
        for k, char in enumerate(text):
            if not is_hanzi(char):
                continue
            if char == "儿" and previous.rstrip("12345").endswith("r") and not previous.startswith("er"):
                continue  # merged into the syllable before it (erhua)
            label = next(gold)
            previous = label
            ours = readings.get(k, "")
            if not ours or ours.rstrip("12345").endswith("r") and not ours.startswith("er"):
                continue
            compared += 1
            if ours == lexicon[k]:
                continue
            kind = category(char, ours, lexicon[k])
            verdict = "ours right" if ours == label else "lexicon right" if lexicon[k] == label else "neither"
            counts[verdict] += 1
            by_category.setdefault(kind, Counter())[verdict] += 1
            example = f"{char}: ours {ours}, lexicon {lexicon[k]}, label {label}"
            if len(shown.setdefault(kind, [])) < examples and example not in shown[kind]:
                shown[kind].append(example)  # the character only: no text of the corpus goes into the docs
    return {"compared": compared, "counts": counts, "by_category": by_category, "examples": shown}


def compare_cpp(items: list[tuple[str, int, str]], family: str, g2p: G2PZh) -> dict[str, int]:
    ours_right = lexicon_right = differ = ours_only = lexicon_only = 0
    for text, index, label in items:
        ours = g2p.citation(text)[index].replace("ü", "v")
        theirs = lexicon_reading(text, family)[index]
        ours_right += ours == label
        lexicon_right += theirs == label
        if ours != theirs:
            differ += 1
            ours_only += ours == label
            lexicon_only += theirs == label
    return {"sentences": len(items), "ours": ours_right, "lexicon": lexicon_right, "differ": differ,
            "ours_only": ours_only, "lexicon_only": lexicon_only}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--baker", default="8001-8400", help="Biaobei utterance range (first-last)")
    parser.add_argument("--cpp", type=int, default=400, help="first N CPP dev sentences")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    first, last = (int(x) for x in args.baker.split("-"))
    items, skipped = baker_items(args.data / "baker" / "prosody_labels_000001-009000.txt", (first, last))
    cpp = read_cpp(args.data / "cpp" / "dev.sent", args.data / "cpp" / "dev.lb")[: args.cpp]
    g2p = G2PZh()
    lines = [
        "## Our readings vs the downloaded models' own lexicons",
        "",
        "What sherpa-onnx would make a Matcha (Baker) or MeloTTS model say, by looking words up in the model's",
        f"lexicon, against what our front end feeds the same model. Biaobei {first:06d}–{last:06d} ({len(items)} utterances,",
        f"{skipped} skipped whose text and labels do not align), per character; where ours and the lexicon's differ,",
        "which one the surface pinyin labels (tones as spoken) agree with. The lookup modelled here gives sherpa-onnx's own",
        "syllables on the tests' check sentences (tests/test_sherpa_voices.py, against PyPI sherpa-onnx 2.0.1).",
        "",
        "| lexicon | characters | differ | ours right | lexicon right | neither |",
        "|---|---|---|---|---|---|",
    ]
    details: list[str] = []
    for family in ("matcha", "melo"):
        result = compare_baker(items, family, g2p)
        counts = result["counts"]
        assert isinstance(counts, Counter)
        total = sum(counts.values())
        lines.append(f"| {family} | {result['compared']} | {total} | {counts['ours right']} | {counts['lexicon right']} | {counts['neither']} |")
        details.append(f"\n{family}, by kind of difference (ours right / lexicon right / neither):\n")
        by_category = result["by_category"]
        examples = result["examples"]
        assert isinstance(by_category, dict) and isinstance(examples, dict)
        for kind, c in sorted(by_category.items(), key=lambda kv: -sum(kv[1].values())):
            details.append(f"- {kind}: {c['ours right']} / {c['lexicon right']} / {c['neither']}; e.g. " + "; ".join(examples[kind]))
    lines += details
    lines += ["", f"CPP dev, first {len(cpp)} sentences: the marked polyphone's dictionary reading (before sandhi).", "",
              "| lexicon | right: ours | right: lexicon | differ | only ours right | only lexicon right |", "|---|---|---|---|---|---|"]
    for family in ("matcha", "melo"):
        r = compare_cpp(cpp, family, g2p)
        lines.append(f"| {family} | {r['ours']}/{r['sentences']} | {r['lexicon']}/{r['sentences']} | {r['differ']} | {r['ours_only']} | {r['lexicon_only']} |")
    lines += ["", "Baker is in-sample for our spoken-tone files (trained on 000001–009000); their blind syllable error "
              "rate on 008001–009000 is 2.12 % against 1.39 % shipped (see the front-end section). "
              "Numbers are not compared: sherpa-onnx reads them with the release's FST rules, we with our normalizer."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("sherpa-readings", body, f"python benchmarks/sherpa_readings.py --baker {args.baker} --cpp {args.cpp}")


if __name__ == "__main__":
    main()
