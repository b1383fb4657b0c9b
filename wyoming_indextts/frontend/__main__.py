"""Inspection command: one JSON object per input line.

    echo 你真的要去银行取钱吗？ | python -m wyoming_indextts.frontend

Fields: ``text``; ``normalized`` (numbers, units … as words); ``pinyin``, one toned syllable
per spoken syllable, as spoken (tone sandhi, neutral tones, erhua); ``prosody``, the
normalized text with #1–#4 boundary marks; ``citation``, one dictionary reading per character
of ``normalized`` ('' where not Chinese): polyphones resolved, before sandhi.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .lexicon import load_lexicon
from .pipeline import Frontend


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m wyoming_indextts.frontend", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lexicon", type=Path, help="word → pinyin overrides (see README)")
    args = parser.parse_args()
    frontend = Frontend(lexicon=load_lexicon(args.lexicon) if args.lexicon else None)
    stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)
    for line in stdin:
        text = line.rstrip("\r\n")
        sentence = frontend.analyze(text)
        record = {
            "text": text,
            "normalized": sentence.normalized,
            "pinyin": sentence.pinyin,
            "prosody": sentence.prosody,
            "citation": list(sentence.citation) if sentence.syllables else [],
        }
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
