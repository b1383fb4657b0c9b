"""User pronunciation overrides: a UTF-8 file of ``word<TAB or space>pinyin with tones``.

    银行  yin2 hang2
    # comments and blank lines are ignored
"""

from __future__ import annotations

import re
from pathlib import Path

_TONED = re.compile(r"^[a-zü]+[1-5]$")


class LexiconError(ValueError):
    """The lexicon file cannot be used; the message names the file (and line) and says why."""

    code = "bad-lexicon"


def load_lexicon(path: Path) -> dict[str, str]:
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise LexiconError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise LexiconError(f"{path}: cannot read the lexicon: {err.strerror or err}") from None
    entries: dict[str, str] = {}
    for number, line in enumerate(content.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ") if "\t" not in line else line.partition("\t")
        syllables = rest.split()
        if len(syllables) != len(word) or not all(_TONED.match(s) for s in syllables):
            raise LexiconError(
                f"{path}:{number}: expected a word and one toned pinyin syllable per character, got {line!r}"
            )
        entries[word] = " ".join(s.replace("ü", "v") for s in syllables)
    return entries
