"""Learn the spoken-tone data of the Chinese front end from the Biaobei (CSMSC) surface labels.

    python tools/train_tones.py erhua ../shared/data/baker/prosody_labels_000001-009000.txt --ids 1-8000

``erhua``: writes ``wyoming_indextts/data/erhua_words.txt``, for every unit ending in 儿 seen in
the labels (the word, or the word before a lone 儿 + 儿), whether the speaker merges 儿 into
the syllable before it. Never learn from 008001–009000 (the benchmark's held-out part).

Training-only tooling: nothing here is imported at run time.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from train_polyphone import baker_utterances  # noqa: E402
from wyoming_indextts.frontend.g2p_zh import G2PZh, erhua_key  # noqa: E402
from wyoming_indextts.frontend.sentence import is_hanzi  # noqa: E402

DATA = REPO / "wyoming_indextts" / "data"
ERHUA_OUT = DATA / "erhua_words.txt"
_ERHUA_SYLLABLE = re.compile(r"[a-z]+r[1-5]")


def align(hanzi: str, syllables: list[str]) -> list[tuple[int, int]] | None:
    """(character index, syllable index) pairs; a merged 儿 maps to the erhua syllable too.

    None where the labels cannot be aligned (a count that erhua does not explain).
    """
    pairs: list[tuple[int, int]] = []
    j = 0
    i = 0
    while i < len(hanzi):
        if j >= len(syllables):
            return None
        s = syllables[j]
        if (i + 1 < len(hanzi) and hanzi[i + 1] == "儿" and _ERHUA_SYLLABLE.fullmatch(s)
                and not s.startswith("er")):
            pairs += [(i, j), (i + 1, j)]
            i += 2
        else:
            pairs.append((i, j))
            i += 1
        j += 1
    return pairs if j == len(syllables) else None


def runs(g2p: G2PZh, text: str) -> Iterator[list]:
    """Unpunctuated runs of Chinese words (``_Word``), as ``G2PZh`` groups them for sandhi."""
    run: list = []
    for word in g2p._words(text) + [None]:
        if word is not None and word.pinyin:
            run.append(word)
            continue
        if run:
            yield run
            run = []


def erhua_votes(labels: Path, ids: tuple[int, int]) -> dict[str, collections.Counter]:
    """Per erhua key, how often the speaker merged 儿 (True) or said it (False)."""
    g2p = G2PZh()
    votes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for text, syllables in baker_utterances(labels, ids):
        if "儿" not in text:
            continue
        hanzi_index = {i: n for n, i in enumerate(i for i, c in enumerate(text) if is_hanzi(c))}
        pairs = align("".join(c for c in text if is_hanzi(c)), syllables)
        if pairs is None:
            continue
        syllable_of = dict(pairs)
        for run in runs(g2p, text):
            texts = [w.text for w in run]
            for w, word in enumerate(run):
                for k, char in enumerate(word.text):
                    if char != "儿" or word.start + k not in hanzi_index:
                        continue
                    key = erhua_key(texts, w, k)
                    n = hanzi_index[word.start + k]
                    if key is None or n == 0:
                        continue
                    votes[key][syllable_of[n] == syllable_of[n - 1]] += 1
    return votes


def learn_erhua(labels: Path, ids: tuple[int, int], out: Path = ERHUA_OUT) -> None:
    votes = erhua_votes(labels, ids)
    with out.open("w", encoding="utf-8") as f:
        f.write(f"# unit ending in 儿<TAB>1 = erhua (merged), 0 = 儿 said; majority of Biaobei {ids[0]:06d}-{ids[1]:06d}\n")
        f.write("# by tools/train_tones.py erhua\n")
        for key in sorted(votes):
            f.write(f"{key}\t{int(votes[key][True] > votes[key][False])}\n")
    print(f"wrote {out}: {len(votes)} units")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("erhua")
    e.add_argument("labels", type=Path, help="Biaobei prosody labels")
    e.add_argument("--ids", default="1-8000", help="utterances to learn from (keep 8001-9000 out)")
    e.add_argument("--out", type=Path, default=ERHUA_OUT)
    args = parser.parse_args()
    low, high = (int(x) for x in args.ids.split("-"))
    if args.command == "erhua":
        learn_erhua(args.labels, (low, high), args.out)


if __name__ == "__main__":
    main()
