"""Home Assistant text: how many sentences the front end reads fully right.

    python benchmarks/frontend_ha.py [benchmarks/data/zh_home_assistant.tsv] [--failures]

A sentence is fully right when all three hold (the definition of issue 16):

* reading: the normalized text is one of the accepted readings (punctuation and spaces ignored,
  as in ``frontend_tn``);
* tones: every ``py:`` check holds (the spoken pinyin of a span, e.g. each 一 that stands for a
  digit keeps tone 1);
* boundaries: every ``nb:`` check holds (no #1–#4 inside a number, its unit or a letter code;
  between the groups of a digit string a boundary of at least #1).

The file format is described at the top of ``benchmarks/data/zh_home_assistant.tsv``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

from frontend_tn import same_reading

from wyoming_indextts.frontend.pipeline import Frontend
from wyoming_indextts.frontend.sentence import Sentence

DEFAULT_TSV = Path(__file__).resolve().parent / "data" / "zh_home_assistant.tsv"


@dataclass(frozen=True)
class Case:
    text: str
    readings: tuple[str, ...]
    no_break: tuple[str, ...] = ()  # spans; "/" marks a group edge
    pinyin: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (span, syllables with "*" wildcards)


@dataclass
class Verdict:
    reading: bool
    tones: list[str] = field(default_factory=list)  # failed checks, described
    boundaries: list[str] = field(default_factory=list)

    @property
    def right(self) -> bool:
        return self.reading and not self.tones and not self.boundaries


def read_cases(path: Path = DEFAULT_TSV) -> list[Case]:
    cases: list[Case] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        text, readings, *rest = line.split("\t")
        no_break: list[str] = []
        pinyin: list[tuple[str, tuple[str, ...]]] = []
        for check in (c.strip() for c in (rest[0] if rest else "").split(";")):
            if check.startswith("nb:"):
                no_break.append(check[3:])
            elif check.startswith("py:"):
                span, _, syllables = check[3:].partition("=")
                pinyin.append((span, tuple(syllables.split())))
            elif check:
                raise ValueError(f"{path}:{number}: unknown check {check!r}")
        cases.append(Case(text, tuple(readings.split("|")), tuple(no_break), tuple(pinyin)))
    return cases


def _compact(text: str) -> tuple[str, list[int]]:
    """``text`` without spaces, and where each remaining character came from (templates put
    spaces around numbers: 「一 小时」 is checked as 「一小时」)."""
    kept = [(i, c) for i, c in enumerate(text) if not c.isspace()]
    return "".join(c for _, c in kept), [i for i, _ in kept]


def _occurrences(haystack: str, needle: str) -> list[int]:
    out, start = [], haystack.find(needle)
    while start >= 0 and needle:
        out.append(start)
        start = haystack.find(needle, start + 1)
    return out


def judge(case: Case, sentence: Sentence) -> Verdict:
    """Checks that name a span absent from the output do not apply: the reading check has
    already required the output to be an accepted reading, and a span may belong to another."""
    verdict = Verdict(reading=any(same_reading(sentence.normalized, r) for r in case.readings))
    compact, where = _compact(sentence.normalized)
    boundary: dict[int, int] = {}
    syllables: dict[int, list[str]] = {}
    for syllable in sentence.syllables:
        boundary[syllable.index] = max(boundary.get(syllable.index, 0), syllable.boundary)
        if not syllable.char.isascii():
            syllables.setdefault(syllable.index, []).append(syllable.pinyin)
    for span in case.no_break:
        groups = span.split("/")
        whole = "".join(groups)
        edges = {sum(len(g) for g in groups[: k + 1]) - 1 for k in range(len(groups) - 1)}
        for start in _occurrences(compact, whole):
            for offset in range(len(whole) - 1):
                level = boundary.get(where[start + offset], 0)
                if offset in edges and level < 1:
                    verdict.boundaries.append(f"{span}: no boundary after {whole[: offset + 1]}")
                elif offset not in edges and level > 0:
                    verdict.boundaries.append(f"{span}: #{level} after {whole[: offset + 1]}")
    for span, wanted in case.pinyin:
        for start in _occurrences(compact, span):
            got = [p for offset in range(len(span)) for p in syllables.get(where[start + offset], [])]
            if len(got) != len(wanted) or any(w not in ("*", g) for w, g in zip(wanted, got)):
                verdict.tones.append(f"{span}: {' '.join(got)} (want {' '.join(wanted)})")
    return verdict


def evaluate(path: Path = DEFAULT_TSV, frontend: Frontend | None = None) -> dict[str, object]:
    """Share of sentences fully right, and of those right in each respect; the failures."""
    frontend = frontend or Frontend()
    cases = read_cases(path)
    started = time.perf_counter()
    sentences = [frontend.analyze(case.text) for case in cases]
    elapsed = time.perf_counter() - started
    verdicts = [judge(case, sentence) for case, sentence in zip(cases, sentences)]
    n = len(cases)
    return {
        "n": n,
        "accuracy": sum(v.right for v in verdicts) / n,
        "reading": sum(v.reading for v in verdicts) / n,
        "tones": sum(not v.tones for v in verdicts) / n,
        "boundaries": sum(not v.boundaries for v in verdicts) / n,
        "ms_per_sentence": elapsed / n * 1000,
        "failures": [(c, s, v) for c, s, v in zip(cases, sentences, verdicts) if not v.right],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tsv", nargs="?", type=Path, default=DEFAULT_TSV)
    parser.add_argument("--failures", action="store_true", help="print each sentence that is not fully right")
    args = parser.parse_args()
    result = evaluate(args.tsv)
    print(f"Home Assistant set: {result['accuracy']:.1%} of {result['n']} sentences fully right "
          f"(reading {result['reading']:.1%}, tones {result['tones']:.1%}, boundaries {result['boundaries']:.1%}); "
          f"{result['ms_per_sentence']:.2f} ms/sentence")
    if args.failures:
        for case, sentence, verdict in result["failures"]:  # type: ignore[union-attr]
            print(f"- {case.text}\n    {sentence.prosody}\n    {' '.join(sentence.pinyin)}")
            if not verdict.reading:
                print(f"    reading: want {case.readings[0]}")
            for problem in verdict.tones + verdict.boundaries:
                print(f"    {problem}")


if __name__ == "__main__":
    main()
