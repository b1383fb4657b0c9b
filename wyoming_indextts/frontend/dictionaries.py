"""Compact, read-only copies of the front end's dictionaries: jieba's word frequencies and
pypinyin's phrase and character readings, with the same answers.

Why: loaded the usual way, they are Python dicts of about a million small objects: jieba's
``Tokenizer.FREQ`` (~500,000 words and word prefixes) takes ~53 MB, pypinyin's phrase and
character dictionaries with its mmseg prefix set ~45 MB more, which pypinyin loads as soon as
anything of it is imported. Here each dictionary is a few flat arrays (UTF-8 keys back to back,
their offsets, an open-addressing hash table, the values): ~13 MB in all.

Where they come from: :func:`build` reads the installed jieba and pypinyin data and converts
every reading the G2P can ask for once, with pypinyin itself; :func:`load_dictionaries` keeps
the result in ``$XDG_CACHE_HOME/wyoming-indextts/dictionaries/`` (the Piper split graphs' cache
folder), keyed by the versions and data files it was built from. The build runs in a child
process (``python -m wyoming_indextts.frontend.dictionaries``), so the server itself never
imports pypinyin; the Docker image runs it at build time. A missing or corrupt cache file is
rebuilt; a folder that cannot be written keeps the rebuilt tables in memory only.

What the G2P asks, and how it is answered here:

* jieba's dictionary-only cutting (``Tokenizer.cut(text, HMM=False)``) over ``FREQ`` and
  ``total``: :meth:`Dictionaries.cut`, jieba's algorithm over :class:`WordTable` (jieba itself
  is then not imported at run time: its HMM tables cost 8 MB even unused).
* pypinyin's phrase dictionary, first reading of each character (all the G2P ever uses), in
  the G2P's tone-digit style: :meth:`PhraseTable.readings`.
* ``lazy_pinyin(word, style=TONE3, neutral_tone_with_five=True)`` as the G2P called it, for
  words of Chinese characters: :meth:`Dictionaries.reading` (pypinyin's mmseg cut over the
  phrase table, then phrase or character readings).

Lookups are thread-safe (nothing changes after construction).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import math
import os
import re
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..cache import model_cache_dir, replace_cached_file
from .sentence import is_hanzi
from .tone_sandhi import word_table

_LOGGER = logging.getLogger(__name__)

# Bump whenever build() would write something different from the same jieba and pypinyin data:
# files of older formats are then rebuilt.
FORMAT = 1
CACHE_FOLDER = "dictionaries"
_FILE_STEM = "frontend-dictionaries"

# Character tables cover the code points of sentence.is_hanzi: U+3400 … U+FAFF.
_CHAR_BASE, _CHAR_END = 0x3400, 0xFB00
_NO_PHRASE = 0  # WordTable value of a phrase-table key that is only a prefix of phrases
_EMPTY_SLOT = -1
# Where pypinyin has no reading (its errors callback gave ''), the G2P's reading was "de5".
_NO_READING = "de5"

# jieba 0.42's re_han_default, re_skip_default and re_eng: what Tokenizer.cut splits by.
_JIEBA_HAN = re.compile(r"([\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]+)")
_JIEBA_SKIP = re.compile(r"(\r\n|\s)")
_JIEBA_ENG = re.compile(r"[a-zA-Z0-9]")


class WordTable:
    """A read-only word → unsigned int table over flat arrays.

    Keys are UTF-8 back to back (``keys``, with ``offsets[i]:offsets[i + 1]`` the i-th key);
    ``slots`` is an open-addressing hash table (CRC-32 of the key, linear probing, about half
    full) of key numbers. Answers ``in``, ``[]`` and ``get`` as a dict would: that is all jieba's
    tokenizer asks of its ``FREQ``.
    """

    __slots__ = ("_keys", "_offsets", "_slots", "_values", "find")

    def __init__(self, keys: bytes, offsets: np.ndarray, slots: np.ndarray, values: np.ndarray) -> None:
        if len(offsets) != len(values) + 1 or offsets[-1] != len(keys) or len(slots) & (len(slots) - 1):
            raise ValueError("inconsistent word table arrays")
        self._keys = keys
        # memoryviews (.data): indexing one gives a plain int, several times faster than a numpy scalar.
        self._offsets = np.ascontiguousarray(offsets, dtype=np.uint32).data
        self._slots = np.ascontiguousarray(slots, dtype=np.int32).data
        self._values = np.ascontiguousarray(values, dtype=np.uint32).data
        self.find: Callable[[str], int] = _finder(keys, self._offsets, self._slots)
        """The key number of a word, -1 if absent."""

    @classmethod
    def build(cls, items: Iterable[tuple[str, int]]) -> WordTable:
        pairs = sorted(items)  # sorted: the same data always gives the same file
        encoded = [word.encode("utf-8") for word, _ in pairs]
        offsets = np.zeros(len(encoded) + 1, dtype=np.uint64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        values = np.array([value for _, value in pairs], dtype=np.uint64)
        if len(values) and (values.max() >= 1 << 32 or offsets[-1] >= 1 << 32):
            raise ValueError("word table too large for 32-bit values or offsets")
        size = 1 << max(4, (2 * len(encoded)).bit_length())  # at most half full
        slots = np.full(size, _EMPTY_SLOT, dtype=np.int32)
        table = slots.data
        mask = size - 1
        for number, key in enumerate(encoded):
            slot = zlib.crc32(key) & mask
            while table[slot] != _EMPTY_SLOT:
                slot = (slot + 1) & mask
            table[slot] = number
        return cls(b"".join(encoded), offsets.astype(np.uint32), slots, values.astype(np.uint32))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}_keys": np.frombuffer(self._keys, dtype=np.uint8),
            f"{prefix}_offsets": np.asarray(self._offsets),
            f"{prefix}_slots": np.asarray(self._slots),
            f"{prefix}_values": np.asarray(self._values),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> WordTable:
        return cls(arrays[f"{prefix}_keys"].tobytes(), arrays[f"{prefix}_offsets"],
                   arrays[f"{prefix}_slots"], arrays[f"{prefix}_values"])

    def value(self, number: int) -> int:
        """The value of key number ``number`` (from :attr:`find`)."""
        return self._values[number]

    def get(self, word: str, default: int | None = None) -> int | None:
        number = self.find(word)
        return default if number < 0 else self._values[number]

    def __getitem__(self, word: str) -> int:
        number = self.find(word)
        if number < 0:
            raise KeyError(word)
        return self._values[number]

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.find(word) >= 0

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[str]:
        keys, offsets = self._keys, self._offsets
        return (keys[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(len(self)))

    def items(self) -> Iterator[tuple[str, int]]:
        return zip(self, self._values)

    @property
    def nbytes(self) -> int:
        return len(self._keys) + self._offsets.nbytes + self._slots.nbytes + self._values.nbytes


def _finder(keys: bytes, offsets: memoryview, slots: memoryview) -> Callable[[str], int]:
    """The lookup of :class:`WordTable`, a closure over its arrays: it is the front end's
    hottest code (a few hundred calls per sentence), and local names spare the attribute loads
    of a method (~25 % of its time)."""
    mask = len(slots) - 1
    crc32 = zlib.crc32

    def find(word: str) -> int:
        key = word.encode()
        slot = crc32(key) & mask
        while True:
            number = slots[slot]
            if number < 0:
                return -1
            if keys[offsets[number] : offsets[number + 1]] == key:
                return number
            slot = (slot + 1) & mask

    return find


class PhraseTable:
    """pypinyin's phrase dictionary: the first reading of each character of each phrase, and
    every prefix of a phrase (pypinyin's mmseg cuts by them).

    ``words`` maps a phrase to its number + 1 and a prefix-only key to 0; phrase ``n``'s
    syllables are ``syllables[spans[n]:spans[n + 1]]``, numbers into ``tone3`` (as the G2P's
    ``_tone3`` converted pypinyin's marks) and ``spoken`` (as its ``lazy_pinyin`` call did).
    """

    __slots__ = ("_spans", "_syllables", "_words", "longest", "spoken", "tone3")

    def __init__(self, words: WordTable, spans: np.ndarray, syllables: np.ndarray,
                 tone3: tuple[str, ...], spoken: tuple[str, ...], longest: int) -> None:
        if len(tone3) != len(spoken) or (len(syllables) and int(np.max(syllables)) >= len(tone3)):
            raise ValueError("inconsistent phrase table arrays")
        if len(spans) < 1 or spans[-1] != len(syllables):
            raise ValueError("inconsistent phrase spans")
        self._words = words
        self._spans = np.ascontiguousarray(spans, dtype=np.uint32).data
        self._syllables = np.ascontiguousarray(syllables, dtype=np.uint16).data
        self.tone3 = tone3
        self.spoken = spoken
        self.longest = longest  # characters in the longest phrase

    def _numbers(self, word: str) -> memoryview | None:
        number = self._words.get(word, _NO_PHRASE)
        if not number:
            return None
        return self._syllables[self._spans[number - 1] : self._spans[number]]

    def readings(self, word: str) -> tuple[str, ...] | None:
        """The phrase's readings, tone digit last (``银行`` → ``("yin2", "hang2")``); None for a
        word that is not a phrase."""
        numbers = self._numbers(word)
        return None if numbers is None else tuple([self.tone3[n] for n in numbers])

    def spoken_readings(self, word: str) -> tuple[str, ...] | None:
        """As :meth:`readings`, as the G2P's ``lazy_pinyin`` call wrote them."""
        numbers = self._numbers(word)
        return None if numbers is None else tuple([self.spoken[n] for n in numbers])

    def __contains__(self, word: object) -> bool:
        """Whether ``word`` is a phrase (not just the beginning of one)."""
        return isinstance(word, str) and bool(self._words.get(word, _NO_PHRASE))

    def is_prefix(self, text: str) -> bool:
        """Whether some phrase starts with ``text`` (a phrase starts with itself)."""
        return self._words.find(text) >= 0

    def ends(self, text: str, start: int, first: int, stop: int) -> list[int]:
        """The ends of the phrases ``text[start:end]`` with ``first <= end <= stop``, shortest
        first. One lookup per length, and none past a ``text[start:end]`` that no phrase begins
        with: the same answer as looking up every length, in a fraction of the lookups."""
        find, words = self._words.find, self._words
        found: list[int] = []
        for end in range(first, stop + 1):
            number = find(text[start:end])
            if number < 0:
                break
            if words.value(number) != _NO_PHRASE:
                found.append(end)
        return found

    def __iter__(self) -> Iterator[str]:
        return (word for word, number in self._words.items() if number != _NO_PHRASE)

    def __len__(self) -> int:
        return len(self._spans) - 1

    def cut(self, text: str) -> Iterator[str]:
        """pypinyin's forward maximum matching (``pypinyin.seg.mmseg.seg.cut``, which allows
        no non-phrases): the longest phrase at each position, else one character."""
        remain = text
        while remain:
            found = ""
            for end in range(1, len(remain) + 1):
                word = remain[:end]
                if not self.is_prefix(word):
                    break
                if word in self:
                    found = word
            else:
                # The whole rest begins a phrase without being one and holds none: pypinyin
                # gives it character by character.
                if not found:
                    yield from remain
                    return
            if found:
                yield found
                remain = remain[len(found) :]
            else:
                yield remain[0]
                remain = remain[1:]

    def arrays(self) -> dict[str, np.ndarray]:
        return {**self._words.arrays("phrase"), "phrase_spans": np.asarray(self._spans),
                "phrase_syllables": np.asarray(self._syllables)}

    @property
    def nbytes(self) -> int:
        return self._words.nbytes + self._spans.nbytes + self._syllables.nbytes


class Dictionaries:
    """The front end's dictionaries, compact. Thread-safe: nothing changes after construction.

    ``char_spoken`` and ``char_alone`` hold one reading per code point from U+3400 to U+FAFF
    (non-hanzi ones unused): a character's reading within a word, and on its own.
    """

    def __init__(self, freq: WordTable, total: int, phrases: PhraseTable,
                 char_spoken: tuple[str, ...], char_alone: tuple[str, ...]) -> None:
        if not len(char_spoken) == len(char_alone) == _CHAR_END - _CHAR_BASE:
            raise ValueError("character tables of the wrong size")
        self.freq = freq
        self.total = total
        self.phrases = phrases
        self._char_spoken = char_spoken
        self._char_alone = char_alone
        # The same words recur all the time (pypinyin's answers were cached the same way).
        self.reading: Callable[[str], tuple[str, ...]] = lru_cache(maxsize=65536)(self._reading)

    def _reading(self, word: str) -> tuple[str, ...]:
        """``word``'s dictionary reading, tone digit last, as the G2P's ``lazy_pinyin(word,
        style=TONE3, neutral_tone_with_five=True)`` call gave it: pypinyin's mmseg cut, phrase
        readings for phrases, the first reading of each other character, ``de5`` where there is
        none. ``word``: Chinese characters only (``sentence.is_hanzi``)."""
        if not all(is_hanzi(char) for char in word):
            raise ValueError(f"not Chinese characters only: {word!r}")
        out: list[str] = []
        for piece in self.phrases.cut(word):
            spoken = self.phrases.spoken_readings(piece)
            if spoken is not None:
                out.extend(spoken)
            else:
                out.extend(self._char_spoken[ord(char) - _CHAR_BASE] for char in piece)
        if len(out) != len(word):  # a phrase with more or fewer syllables than characters
            return tuple(self._char_alone[ord(char) - _CHAR_BASE] for char in word)
        return tuple(out)

    def char_reading(self, char: str) -> str:
        """A Chinese character's first dictionary reading on its own, tone digit last, as
        ``lazy_pinyin(char, style=TONE3, neutral_tone_with_five=True)[0]`` gives it."""
        if not is_hanzi(char):
            raise ValueError(f"not a Chinese character: {char!r}")
        return self._char_alone[ord(char) - _CHAR_BASE]

    def cut(self, text: str) -> Iterator[str]:
        """Words as jieba's ``Tokenizer().cut(text, HMM=False)`` cuts them: runs of Chinese
        characters, letters, digits (and ``+#&._%-``) by its dictionary; spaces and line breaks
        as themselves; anything else one character at a time. jieba's code (0.42, MIT), with
        one lookup per fragment where it made up to three."""
        for block in _JIEBA_HAN.split(text):
            if not block:
                continue
            if _JIEBA_HAN.match(block):
                yield from self._cut_block(block)
                continue
            for part in _JIEBA_SKIP.split(block):
                if _JIEBA_SKIP.match(part):
                    yield part
                else:
                    yield from part

    def _cut_block(self, sentence: str) -> Iterator[str]:
        """jieba's ``get_DAG`` + ``calc`` + ``__cut_DAG_NO_HMM``: the most probable cut by word
        frequencies; single letters and digits in a row are joined."""
        find, frequency = self.freq.find, self.freq.value
        count = len(sentence)
        log_total = math.log(self.total)
        # For each start, the ends of the dictionary words starting there with log frequencies;
        # a character that starts none is a word of frequency 1.
        edges: list[list[tuple[float, int]]] = []
        for start in range(count):
            found: list[tuple[float, int]] = []
            end = start
            while end < count:
                number = find(sentence[start : end + 1])
                if number < 0:  # no word begins with this fragment
                    break
                value = frequency(number)
                if value:  # 0: only a prefix of words
                    found.append((math.log(value), end))
                end += 1
            edges.append(found or [(0.0, start)])
        route: list[tuple[float, int]] = [(0.0, 0)] * (count + 1)
        for start in range(count - 1, -1, -1):
            route[start] = max((weight - log_total + route[end + 1][0], end) for weight, end in edges[start])
        position = 0
        letters = ""
        while position < count:
            end = route[position][1] + 1
            word = sentence[position:end]
            if len(word) == 1 and _JIEBA_ENG.match(word):
                letters += word
            else:
                if letters:
                    yield letters
                    letters = ""
                yield word
            position = end
        if letters:
            yield letters

    @property
    def nbytes(self) -> int:
        """Bytes in the arrays (the ~1,500 distinct reading strings not counted)."""
        return self.freq.nbytes + self.phrases.nbytes

    # -- the cache file ----------------------------------------------------------------------

    def to_bytes(self, sources: dict[str, object]) -> bytes:
        """An ``.npz`` file (no pickles): the arrays, the reading strings numbered, and
        ``sources`` (what it was built from) for :func:`load_dictionaries` to compare."""
        phrases = self.phrases
        texts = sorted(set(self._char_spoken) | set(self._char_alone) | set(phrases.tone3) | set(phrases.spoken))
        number = {text: n for n, text in enumerate(texts)}
        if len(texts) > 1 << 16 or any("\n" in text for text in texts):
            raise ValueError("reading strings do not fit the file format")

        def numbered(strings: tuple[str, ...]) -> np.ndarray:
            return np.array([number[s] for s in strings], dtype=np.uint16)

        meta = {"format": FORMAT, "total": self.total, "longest": phrases.longest, "sources": sources}
        buffer = io.BytesIO()
        np.savez(
            buffer, allow_pickle=False,
            meta=_utf8(json.dumps(meta, sort_keys=True)), texts=_utf8("\n".join(texts)),
            **self.freq.arrays("freq"), **phrases.arrays(),
            syllable_tone3=numbered(phrases.tone3), syllable_spoken=numbered(phrases.spoken),
            char_spoken=numbered(self._char_spoken), char_alone=numbered(self._char_alone),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes | Path) -> tuple[Dictionaries, dict[str, object]]:
        """The dictionaries and the file's ``sources`` from the file's bytes or the file (read
        one array at a time: no copy of the whole file in memory). Raises (ValueError, KeyError,
        zipfile.BadZipFile, ...) for anything but a whole file of this format."""
        with np.load(io.BytesIO(data) if isinstance(data, bytes) else data, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}  # zipfile checks each member's CRC
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"dictionary format {meta.get('format')}, expected {FORMAT}")
        texts = arrays["texts"].tobytes().decode("utf-8").split("\n")

        def strings(name: str) -> tuple[str, ...]:
            return tuple([texts[n] for n in arrays[name].tolist()])

        phrases = PhraseTable(WordTable.from_arrays(arrays, "phrase"), arrays["phrase_spans"], arrays["phrase_syllables"],
                              strings("syllable_tone3"), strings("syllable_spoken"), int(meta["longest"]))
        dictionaries = cls(WordTable.from_arrays(arrays, "freq"), int(meta["total"]), phrases,
                           strings("char_spoken"), strings("char_alone"))
        return dictionaries, meta["sources"]


def _utf8(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# Building from the installed jieba and pypinyin
# ---------------------------------------------------------------------------------------------


def _package_folder(name: str) -> Path:
    """A package's folder, without importing it (importing pypinyin loads its dictionaries)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


_CORRECTIONS_FILE = "phrase_corrections.txt"


def phrase_corrections() -> dict[str, list[str]]:
    """Our phrase readings (``data/phrase_corrections.txt``) that replace or add to pypinyin's."""
    rows = word_table(_CORRECTIONS_FILE)
    return {word: pinyin.split() for word, pinyin in rows if len(pinyin.split()) == len(word)}


def sources() -> dict[str, object]:
    """What the tables are built from: this format, the package versions, the data files' paths,
    sizes and times, and our corrections' content. Any change means another cache file."""
    described: dict[str, object] = {"format": FORMAT}
    corrections = json.dumps(phrase_corrections(), sort_keys=True, ensure_ascii=False).encode("utf-8")
    described["phrase_corrections"] = hashlib.sha256(corrections).hexdigest()[:16]
    for package, files in (("jieba", ("dict.txt",)), ("pypinyin", ("phrases_dict.json", "pinyin_dict.json"))):
        folder = _package_folder(package)
        described[package] = importlib.metadata.version(package)
        for name in files:
            stat = (folder / name).stat()
            described[f"{package}/{name}"] = [str(folder / name), stat.st_size, stat.st_mtime_ns]
    return described


def build() -> Dictionaries:
    """Convert the installed jieba and pypinyin dictionaries. Imports both: ~150 MB of heap
    that stays with the process, hence :func:`load_dictionaries` runs it in a child."""
    import jieba  # type: ignore[import-untyped]
    from pypinyin import Style, lazy_pinyin
    from pypinyin.constants import PHRASES_DICT
    from pypinyin.contrib.tone_convert import to_tone, to_tone3
    from pypinyin.converter import UltimateConverter

    # What jieba's Tokenizer.initialize() puts in FREQ and total, from the same dict.txt.
    freq, total = jieba.Tokenizer.gen_pfdict(jieba.Tokenizer().get_dict_file())

    def finish(pinyin: str) -> str:
        """How the G2P finished each syllable lazy_pinyin gave it."""
        return (pinyin if pinyin[-1:].isdigit() else (pinyin + "5" if pinyin else _NO_READING)).replace("ü", "v")

    def tone3(syllable: str) -> str:
        """The G2P's ``_tone3``: the style of its phrase readings."""
        out = to_tone3(syllable, neutral_tone_with_five=True).replace("ü", "v")
        return out if out[-1:].isdigit() else out + "5"

    # lazy_pinyin's conversion of each syllable (its style depends on the syllable alone).
    converter = UltimateConverter(neutral_tone_with_five=True)

    def spoken(syllable: str) -> str:
        return finish(converter.convert_style("", orig_pinyin=syllable, style=Style.TONE3, strict=True) or "")

    numbers: dict[str, int] = {}  # pypinyin's syllables (with tone marks), numbered
    keys: dict[str, int] = {}
    spans = [0]
    syllables: list[int] = []
    phrase_dict = dict(PHRASES_DICT)
    phrase_dict.update({word: [[to_tone(s)] for s in pinyin] for word, pinyin in phrase_corrections().items()})
    for word in sorted(phrase_dict):
        syllables.extend(numbers.setdefault(options[0], len(numbers)) for options in phrase_dict[word])
        spans.append(len(syllables))
        keys[word] = len(spans) - 1  # phrase number + 1
    for word in list(keys):
        for end in range(1, len(word)):
            keys.setdefault(word[:end], _NO_PHRASE)
    marked = sorted(numbers, key=numbers.__getitem__)
    phrases = PhraseTable(
        WordTable.build(keys.items()), np.array(spans, dtype=np.uint32), np.array(syllables, dtype=np.uint16),
        tuple(tone3(s) for s in marked), tuple(spoken(s) for s in marked),
        max((len(word) for word in phrase_dict), default=0),
    )

    def no_pinyin(chars: str) -> list[str]:
        return ["" for _ in chars]

    char_spoken: list[str] = []
    char_alone: list[str] = []
    for code in range(_CHAR_BASE, _CHAR_END):
        char = chr(code)
        if not is_hanzi(char):
            char_spoken.append(_NO_READING)  # never asked for
            char_alone.append(_NO_READING)
            continue
        # The G2P's former calls for one character: within a word (no pinyin → ''), and alone.
        within = lazy_pinyin(char, style=Style.TONE3, neutral_tone_with_five=True, errors=no_pinyin)  # type: ignore[arg-type]
        char_spoken.append(finish(within[0]))
        char_alone.append(finish(lazy_pinyin(char, style=Style.TONE3, neutral_tone_with_five=True)[0]))
    return Dictionaries(WordTable.build(freq.items()), total, phrases, tuple(char_spoken), tuple(char_alone))


# ---------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------


def cache_file(cache_dir: Path, described: dict[str, object]) -> Path:
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return cache_dir / CACHE_FOLDER / f"{_FILE_STEM}-{digest}.npz"


def _build_in_child() -> bytes:
    """:func:`build` in a child process, the file's bytes on its stdout: the server process
    never imports pypinyin, whose dictionaries load at import and cannot be unloaded. Where no
    child can be started, built here (memory as before this module, until the next start)."""
    package_root = str(Path(__file__).resolve().parents[2])  # this very code, whatever sys.path says
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    try:
        child = subprocess.run([sys.executable, "-m", "wyoming_indextts.frontend.dictionaries", "--stdout"], capture_output=True, env=environment,
                               check=False, timeout=600)
        if child.returncode == 0 and child.stdout:
            return child.stdout
        reason = child.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {child.returncode}"]
        _LOGGER.warning("Building the dictionaries in a child process failed (%s); building them here", reason[0])
    except (OSError, subprocess.SubprocessError) as err:
        _LOGGER.warning("Cannot start a child process to build the dictionaries (%s); building them here", err)
    return build().to_bytes(sources())


def load_dictionaries(cache_dir: Path | None = None, builder: Callable[[], bytes] = _build_in_child) -> Dictionaries:
    """The compact dictionaries from ``cache_dir/dictionaries/`` (default :func:`model_cache_dir`),
    built first where the file is missing, unreadable or from other sources. A folder that cannot
    be written keeps them in memory: built again at the next start, never an error."""
    described = sources()
    path = cache_file(cache_dir if cache_dir is not None else model_cache_dir(), described)
    try:
        cached, cached_from = Dictionaries.from_bytes(path)
        if cached_from == described:
            return cached
        _LOGGER.warning("Dictionary cache %s was built from other data; building it again", path)
    except FileNotFoundError:
        pass
    except Exception as err:  # noqa: BLE001 - any fault in our own cache file means: build it again
        _LOGGER.warning("Dictionary cache %s is unusable (%s); building it again", path, err)
    started = time.monotonic()
    built_from: dict[str, object] | None
    try:
        data = builder()
        dictionaries, built_from = Dictionaries.from_bytes(data)
    except Exception as err:  # noqa: BLE001 - whatever the child gave, this process can still build
        _LOGGER.warning("The dictionary build gave no usable file (%s); building them here", err)
        built_from = None
    if built_from != described:
        if built_from is not None:  # a child that imported another jieba or pypinyin than this process
            _LOGGER.warning("The dictionaries were built from %s, not %s; building them here", built_from, described)
        dictionaries = build()
        data = dictionaries.to_bytes(described)
    if (err := replace_cached_file(path, data, f"{_FILE_STEM}-*.npz")) is not None:  # ~15 MB each
        _LOGGER.warning("Cannot cache the dictionaries in %s (%s); building them at every start", path.parent, err)
        return dictionaries
    _LOGGER.info("Built the front end's dictionaries in %.1f s, cached in %s", time.monotonic() - started, path)
    return dictionaries


@lru_cache(maxsize=1)
def default_dictionaries() -> Dictionaries:
    """The process's dictionaries (one copy, read-only), loaded on first use."""
    return load_dictionaries()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wyoming_indextts.frontend.dictionaries", description="Build the front end's compact dictionaries into the cache "
                                     "(the Docker image does this at build time).")
    parser.add_argument("--cache-dir", type=Path, help="default: $XDG_CACHE_HOME/wyoming-indextts")
    parser.add_argument("--stdout", action="store_true", help="build here and write the file to stdout, cache untouched")
    args = parser.parse_args(argv)
    if args.stdout:
        sys.stdout.buffer.write(build().to_bytes(sources()))
        sys.stdout.flush()
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    dictionaries = load_dictionaries(args.cache_dir)
    print(f"{cache_file(args.cache_dir or model_cache_dir(), sources())}: {len(dictionaries.freq)} jieba entries, "
          f"{len(dictionaries.phrases)} phrases, {dictionaries.nbytes / 2**20:.1f} MiB of arrays")


if __name__ == "__main__":
    main()
