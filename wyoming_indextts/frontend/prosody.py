"""Prosodic boundaries (#1–#4) and sentence type.

Boundaries come from a small character-level BiLSTM trained on the Biaobei
(CSMSC) prosody labels (``tools/train_prosody.py``), run with ONNX Runtime.
Per character of the normalized text it sees the character, the word
segmentation the G2P used (``Reading.word_start``), dictionary-word lattice
features, the distance to the nearest punctuation, and the lexical analyser's
word boundaries and part of speech (``lexical.py``), and tags the boundary
after that character: 0, #1 prosodic word, #2 prosodic phrase, #3
intonational phrase. #4 after the last syllable is a rule. When the model file
is missing the first-version rules (:func:`rule_boundaries`) are used. After either,
:func:`keep_numbers_whole` keeps numbers, units, clock times and letter codes in one piece and
groups digit strings, so that a retrained model gets that for free.

Interface: readings in, one boundary level per reading out (the boundary that
FOLLOWS the reading).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .dictionaries import PhraseTable, default_dictionaries
from .g2p_zh import Reading
from .lexical import TAGS, Analysis, default_analyzer, hidden_states, segmentation_tags
from .normalize import SPOKEN_UNITS
from .sentence import is_hanzi

_LOGGER = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MODEL_PATH = DATA_DIR / "prosody.onnx"
VOCAB_PATH = DATA_DIR / "prosody_vocab.json"

# ---------------------------------------------------------------------------
# Features (shared with tools/train_prosody.py: change both together, then retrain)
# ---------------------------------------------------------------------------

FEATURE_VERSION = 2
PAD, UNK = 0, 1
# ASCII punctuation folded onto the full-width marks the training text uses.
_FOLD = str.maketrans({",": "，", "?": "？", "!": "！", ":": "：", ";": "；", ".": "。", "(": "（", ")": "）",
                       '"': "”", "'": "’", "~": "～", "「": "“", "」": "”", "『": "“", "』": "”"})
PUNCT = set("，。！？、；：…—“”‘’（）《》～,.!?;:()\"'-")
_STRONG = set("，。！？；：—,.!?;:")  # a pause of (at least) an intonational phrase
# Segmentation tags per character: 0 pad, 1 B, 2 M, 3 E, 4 S (single-char word), 5 punctuation, 6 other.
_MAX_DICT = 4
_DIST_BUCKETS = 12
_LONGEST_WORD = 8  # dictionary words of 2-8 characters make the lattice
FEATURES = 8
# Sizes of the side inputs' vocabularies (columns 1-7 of ``features``), for the training script.
SIDE_SIZES = (7, 5, 5, _DIST_BUCKETS, _DIST_BUCKETS, 5, len(TAGS) + 1)


def char_token(char: str) -> str:
    """The vocabulary key of one character."""
    char = char.translate(_FOLD)
    if char.isspace():
        return "<SP>"
    if char.isascii() and char.isalnum():
        return "<LAT>"
    return char


def features(text: str, readings: Sequence[Reading], vocab: dict[str, int], phrases: PhraseTable,
             analysis: Analysis) -> np.ndarray:
    """``[len(text), FEATURES]`` int64: char id, segmentation tag, dict word ending here, dict word
    starting here (words of pypinyin's ``phrases``), distance to previous strong punctuation, distance
    to the next; the lexical analyser's place in the word (1 begin, 2 middle, 3 end, 4 single) and the
    id of the word's tag (``lexical.tag_id``)."""
    n = len(text)
    out = np.zeros((n, FEATURES), dtype=np.int64)
    if n == 0:
        return out
    starts = {r.index: r.word_start for r in readings}
    longest = min(phrases.longest, _LONGEST_WORD)
    # Segmentation tags from the G2P's own word boundaries.
    for i, char in enumerate(text):
        out[i, 0] = vocab.get(char_token(char), UNK)
        if i in starts:
            begin = starts[i]
            end = (i + 1 not in starts) or starts[i + 1]
            out[i, 1] = 4 if begin and end else 1 if begin else 3 if end else 2
        else:
            out[i, 1] = 5 if char in PUNCT or char.translate(_FOLD) in PUNCT else 6
    # Dictionary lattice: the longest dictionary word ending / starting at each character.
    hanzi = [is_hanzi(c) for c in text]
    for i in range(n):
        if not hanzi[i]:
            continue
        ends = phrases.ends(text, i, i + 2, i + min(longest, n - i))
        if ends:
            length = ends[-1] - i
            out[i, 3] = max(out[i, 3], min(length, _MAX_DICT))
            last = i + length - 1
            out[last, 2] = max(out[last, 2], min(length, _MAX_DICT))
            for k in range(i + 1, last):  # inside a word: mark as such (length 1 code is unused otherwise)
                if out[k, 2] == 0:
                    out[k, 2] = 1
    # Distance (in characters) to the previous / next strong punctuation or the sentence edge.
    distance = 0
    for i in range(n):
        distance = 0 if text[i] in _STRONG else distance + 1
        out[i, 4] = min(distance, _DIST_BUCKETS - 1)
    distance = 0
    for i in range(n - 1, -1, -1):
        distance = 0 if text[i] in _STRONG else distance + 1
        out[i, 5] = min(distance, _DIST_BUCKETS - 1)
    out[:, 6:8] = np.asarray(segmentation_tags(analysis, n), dtype=np.int64).reshape(n, 2)
    return out


# ---------------------------------------------------------------------------
# Rules: the first version, kept as fallback and as the benchmark baseline
# ---------------------------------------------------------------------------

_CLAUSE = set("，,、；;：:—")


def rule_boundaries(text: str, readings: Sequence[Reading]) -> list[int]:
    """Word boundaries become #1 (single syllables lean on their neighbour), clause punctuation #3."""
    levels = [0] * len(readings)
    if not readings:
        return levels
    word_length = 0
    for i, reading in enumerate(readings):
        word_length += 1
        if i == len(readings) - 1:
            levels[i] = 4
            break
        between = text[reading.index + 1 : readings[i + 1].index]
        if any(c in _CLAUSE for c in between):
            levels[i] = 3
            word_length = 0
        elif readings[i + 1].word_start and word_length >= 2:
            levels[i] = 1
            word_length = 0
    return levels


# ---------------------------------------------------------------------------
# The trained predictor
# ---------------------------------------------------------------------------


class ProsodyPredictor:
    """Loads ``prosody.onnx`` once; thread-safe (ONNX Runtime sessions are)."""

    def __init__(self, model_path: Path = MODEL_PATH, vocab_path: Path = VOCAB_PATH, threads: int = 1,
                 phrases: PhraseTable | None = None) -> None:
        from ..onnx import create_session

        meta = json.loads(vocab_path.read_text(encoding="utf-8"))
        if meta.get("feature_version") != FEATURE_VERSION:
            raise ValueError(f"{vocab_path}: feature version {meta.get('feature_version')}, expected {FEATURE_VERSION}")
        self.vocab: dict[str, int] = meta["vocab"]
        self.thresholds: list[float] = list(meta.get("thresholds", [0.5, 0.5, 0.5]))
        self._session = create_session(model_path, threads=threads)
        self._input = self._session.get_inputs()[0].name
        # A model trained with --states also reads the analyser's encoder output (lexical.hidden_states).
        self._states = next((i.name for i in self._session.get_inputs()[1:] if i.name == "states"), None)
        self._phrases = phrases or default_dictionaries().phrases

    def probabilities(self, text: str, readings: Sequence[Reading], analysis: Analysis | None = None) -> np.ndarray:
        """``[len(text), 4]`` probabilities of levels 0..3 after each character. ``analysis``: the
        sentence's lexical analysis, if the caller has it already."""
        if analysis is None:
            analysis = default_analyzer()(text)
        inputs = {self._input: features(text, readings, self.vocab, self._phrases, analysis)[None]}
        if self._states:
            inputs[self._states] = hidden_states(analysis, len(text))[None]
        return self._session.run(None, inputs)[0][0]

    def __call__(self, text: str, readings: Sequence[Reading], analysis: Analysis | None = None) -> list[int]:
        if not readings:
            return []
        if len(readings) == 1:
            return [4]
        return self.levels(text, readings, self.probabilities(text, readings, analysis))

    def levels(self, text: str, readings: Sequence[Reading], probs: np.ndarray) -> list[int]:
        """The boundary after each reading from the model's ``probs``: the thresholds, then the
        rules every prediction goes through (punctuation, numbers kept whole)."""
        levels = [decode(probs[r.index], self.thresholds) for r in readings]
        return keep_numbers_whole(text, readings, _post_rules(text, readings, levels))


def decode(probs: np.ndarray, thresholds: Sequence[float]) -> int:
    """The highest level k whose probability P(level >= k) reaches ``thresholds[k - 1]``."""
    level = 0
    tail = 0.0
    tails = [0.0] * 4
    for k in (3, 2, 1):
        tail += float(probs[k])
        tails[k] = tail
    for k in (1, 2, 3):
        if tails[k] >= thresholds[k - 1]:
            level = k
    return level


def _post_rules(text: str, readings: Sequence[Reading], levels: list[int]) -> list[int]:
    last = len(readings) - 1
    for i in range(last):
        a, b = readings[i].index, readings[i + 1].index
        between = text[a + 1 : b]
        if any(c in _STRONG for c in between):
            levels[i] = max(levels[i], 3)  # a comma, colon, dash ... is a pause
        elif _latin(text[a]) and _latin(text[b]) and not between.strip("-"):
            levels[i] = 0  # letters of one spelled-out word (Wi-Fi's "-" counts as inside)
        elif _latin(text[a]) != _latin(text[b]):
            levels[i] = max(levels[i], 1)  # script change: at least a prosodic word
        elif between:
            levels[i] = max(levels[i], 1)  # a space, quote or bracket: at least a prosodic word
    levels[last] = 4
    return levels


def _latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


# ---------------------------------------------------------------------------
# Numbers are words: a constraint applied after any predictor (model or rules)
# ---------------------------------------------------------------------------
#
# The model learned its boundaries from Biaobei, where a long number is read slowly; it cuts
# 三百#1二十八点#1六千#1瓦时 as it would cut words. Whatever a (re)trained model predicts, this step
# removes every boundary inside a number as the normalizer writes it (between 点 and its decimals
# too), inside a unit, inside a clock time or duration, and between a letter code and its digits
# (PM二点五). A boundary may precede or follow them; between a number and its unit there is none,
# except that a unit which starts like a number gets one (八点六#1千瓦时). Digit
# strings (phones, codes) are cut into the groups people read them in, with at least #1 between
# groups and none inside.

_NUMERALS = "零〇一二两三四五六七八九十百千万亿幺"
_DIGITS = "零〇一二三四五六七八九幺"
# A number as the normalizer writes it: sign, 百分之/五分之, the cardinal, then after each 点
# digits (decimals, addresses) or a part of a version (二零二五点十一点一). It never starts with
# 一十 (read_integer writes 十三): in 另一十三岁 the 一 belongs to the word before.
_CORE = (rf"(?:负|正负|零下|第)?(?:百分之|[{_NUMERALS}]+分之)?(?!一十)[{_NUMERALS}]+"
         rf"(?:点(?:[{_DIGITS}]*十[{_DIGITS}]?|[{_DIGITS}]+))*(?!分之)")  # 百分之四十 is not 百 + 分
_UNIT = "(?:" + "|".join(SPOKEN_UNITS) + ")(?:每(?:" + "|".join(SPOKEN_UNITS) + "))*"
_UNIT_WORD = re.compile(_UNIT)
_CODE = r"(?:(?<![A-Za-z])[A-Za-z]{1,4})?"  # PM二点五, CO二, v二点一点零
# With a unit if one can follow (三百二十一|千卡, not 三百二十一千|卡), else bare or with letters (四K).
_NUMBER = re.compile(rf"{_CODE}(?:(?P<number>{_CORE})\s*(?P<unit>{_UNIT})|{_CORE}(?:[A-Za-z]{{1,4}}(?![A-Za-z]))?)")
# Clock times and durations of two or more parts are one word each: 十四点, 十四点三十分,
# 一小时三十分钟, 三天四小时五分六秒 (a bare 二十四小时 is a number and its unit).
_TIME = re.compile(rf"(?:{_CORE}天)?{_CORE}点(?:{_CORE}分钟?)?(?:{_CORE}秒)?|(?:{_CORE}天)?{_CORE}小时{_CORE}分钟?(?:{_CORE}秒)?"
                   rf"|{_CORE}天{_CORE}小时(?:{_CORE}分钟?)?(?:{_CORE}秒)?|{_CORE}分钟?{_CORE}秒")
_DIGIT_RUN = re.compile(rf"(?<![点{_DIGITS}])[{_DIGITS}]{{6,}}")
# A unit that starts like a number (千瓦时, 百帕, 万元) gets at least #1 before it: 八点六千瓦时
# with no break between 六 and 千 is heard as 八点六千.
_NUMBER_LIKE_UNIT = tuple("千百万亿")
# 兆 is a number word too (10^6, 10^12) and the mega- of 兆字节: whether it is heard as part of
# the number depends on the number, so the junction before it is left to the model.
_AMBIGUOUS_UNIT = ("兆",)


def digit_groups(digits: str, after_plus: bool = False) -> list[int]:
    """Group lengths of a digit string as people say it: mobile 3-4-4, 400/800 numbers 3-3-4,
    landlines area code then 3-4 or 4-4, a country code (after 加) on its own; up to five digits
    one group, six or seven 3-3 or 3-4 (codes, local numbers), longer codes in fours (never a
    group of one)."""
    n = len(digits)
    if after_plus and n > 11 and digits[n - 11] in "幺一":
        return [n - 11, 3, 4, 4]
    if n == 11 and digits[0] in "幺一":
        return [3, 4, 4]
    if digits[0] in "零〇" and n >= 10:
        area = 3 if digits[1] in "幺一二" else 4
        return [area, *digit_groups(digits[area:])]
    if n <= 5:
        return [n]
    if n <= 7:
        return [3, n - 3]
    if n == 10 and digits[:3] in ("四零零", "八零零"):
        return [3, 3, 4]
    groups = [4] * (n // 4)
    if n % 4 == 1:
        groups[-1:] = [3, 2]
    elif n % 4:
        groups.append(n % 4)
    return groups


def number_spans(text: str) -> list[tuple[int, int, list[int]]]:
    """``(start, end, cuts)`` of each stretch of ``text`` (normalized) with no boundary inside
    but at ``cuts``: numbers with their letter codes, units, clock times and durations. ``cuts``
    are positions after which a boundary of at least #1 must fall: between the groups of a digit
    string, and between a number and a unit that starts like one."""
    spans: list[tuple[int, int, list[int]]] = []
    position = 0
    while (match := _NUMBER.search(text, position)) is not None:
        start = match.start()
        time = _TIME.match(text, start)
        if time and time.end() >= match.end():  # 十四点三十分 is one word, not 十四点三十 + 分
            position = time.end()
            spans.append((start, time.end(), _group_cuts(text, start, time.end())))
            continue
        position = max(match.end(), start + 1)
        unit = match.group("unit")
        number_end = match.end("number") if unit else match.end()
        if unit:
            unit_start = match.start("unit")
            if not _well_formed(match.group("number")) and _UNIT_WORD.fullmatch(text[number_end - 1 : match.end()]):
                number_end = unit_start = number_end - 1  # 一千零一十三|百帕, not 一千零一十三百|帕
                unit = text[unit_start : match.end()]
            # No boundary between a number and its unit either (Biaobei 000001-008000 has one at
            # 34 of 1,355 such junctions), except before 千瓦时 and the like, which gets #1.
            joined = unit_start == number_end and not unit.startswith(_AMBIGUOUS_UNIT)
            junction = [number_end - 1] if joined and unit.startswith(_NUMBER_LIKE_UNIT) else []
            spans.append((number_end - 1 if joined else unit_start, match.end(), junction))
        if number_end - start >= 2:
            spans.append((start, number_end, _group_cuts(text, start, number_end)))
    return spans


def _well_formed(number: str) -> bool:
    """Whether the place values of each 万/亿 section of a cardinal fall: 一千零一十三 yes, 一千零一十三百 no."""
    whole = number.split("点")[0]
    for section in re.split("[万亿]", whole):
        places = [c for c in section if c in "千百十"]
        if places != sorted(set(places), key="千百十".index):
            return False
        # 零 stands for a skipped place, so the next place is at least two below the last one:
        # 一千零八十 yes, 一千零八百 no (一千零八 and a 百 unit: 一千零八百帕 is 1008 hPa).
        for before, after in re.findall("([千百十])零[^千百十]*([千百十])", section):
            if "千百十".index(after) - "千百十".index(before) < 2:
                return False
    return True


def _group_cuts(text: str, start: int, end: int) -> list[int]:
    cuts: list[int] = []
    for run in _DIGIT_RUN.finditer(text, start, end):
        cut = run.start()
        for size in digit_groups(run.group(), after_plus=text[run.start() - 1 : run.start()] == "加")[:-1]:
            cut += size
            cuts.append(cut - 1)
    return cuts


def keep_numbers_whole(text: str, readings: Sequence[Reading], levels: list[int]) -> list[int]:
    """``levels`` without boundaries inside numbers, units, letter codes, times and durations; at
    least #1 at the cuts of :func:`number_spans`. The last reading's level is left as it is."""
    spans = number_spans(text)
    if not spans:
        return levels
    inside: set[int] = set()
    cuts: set[int] = set()
    for start, end, span_cuts in spans:
        inside.update(range(start, end - 1))
        cuts.update(span_cuts)
    for i, reading in enumerate(readings[:-1]):
        if reading.index in cuts:
            levels[i] = max(levels[i], 1)
        elif reading.index in inside:
            levels[i] = 0
    return levels


_PREDICTOR: ProsodyPredictor | None = None
_PREDICTOR_FAILED = False
_LOCK = threading.Lock()


def default_predictor() -> ProsodyPredictor | None:
    """The shared predictor, loaded on first use; ``None`` (rules are used) if the model is missing."""
    global _PREDICTOR, _PREDICTOR_FAILED
    if _PREDICTOR is None and not _PREDICTOR_FAILED:
        with _LOCK:
            if _PREDICTOR is None and not _PREDICTOR_FAILED:
                try:
                    _PREDICTOR = ProsodyPredictor()
                except (OSError, ValueError, KeyError) as error:
                    _PREDICTOR_FAILED = True
                    _LOGGER.warning("Prosody model unavailable (%s); using rule-based boundaries", error)
    return _PREDICTOR


def predict_boundaries(text: str, readings: Sequence[Reading], analysis: Analysis | None = None) -> list[int]:
    """One level per reading: the boundary that follows it (0 inside a prosodic word, 4 at the end).
    ``analysis``: the sentence's lexical analysis, if the caller has it (it is made otherwise)."""
    predictor = default_predictor()
    if predictor is None:
        levels = rule_boundaries(text, readings)
        return keep_numbers_whole(text, readings, _post_rules(text, readings, levels)) if readings else levels
    return predictor(text, readings, analysis)


# ---------------------------------------------------------------------------
# Sentence type
# ---------------------------------------------------------------------------

_CLOSERS = " ”’\"')）」』》"
_TRAILING = "…~～.。 "
# Yes/no particles at the end (吧 asks for confirmation; 啊/呀 are too ambiguous to count alone).
_YES_NO_PARTICLES = ("吗", "么", "吧")
_NOT_PARTICLE_ME = ("这么", "那么", "多么", "怎么", "什么", "要么", "那么着")
# V了没(有): 你吃饭了没有 (but not 我还没有).
_PERFECT_NOT = re.compile(r"了[^了，,]*没有?$")
_WH_PARTICLES = ("呢",)
# A-not-A: 去不去, 是不是, 好不好, 有没有, 能不能, 喜不喜欢 (first syllable of a two-char verb).
_A_NOT_A = re.compile(r"([\u4e00-\u9fff])[不没]\1")
_WH_WORDS = re.compile(
    r"(什么|啥|怎么|怎样|怎么样|为什么|为何|哪|谁|几点|几个|几号|几岁|几天|几年|几月|多少|多久|多大|多长|多远|多高|"
    r"如何|何时|何地|何处|难道|岂|是否|可否|能否|有无|要不|还是)"
)
# Words that look like questions but are not, when no "？" says otherwise.
_NOT_QUESTION = re.compile(r"(不管|无论|不论|什么都|谁都|哪儿都|哪里都|怎么都|多少都|为什么不|随便|反正)")


def question_kind(text: str) -> str | None:
    """``"yes_no"``, ``"wh"``, ``"a_not_a"`` or ``"alternative"`` for a question, ``None`` otherwise.

    The ending wins: ``？`` means a question, ``。``/``！`` a statement. Without either, particles
    (吗, 呢, 吧 ...), A-not-A forms and question words decide, as in a voice assistant's
    unpunctuated replies.
    """
    stripped = text.rstrip(_CLOSERS)
    ends_question = stripped.endswith(("？", "?"))
    if stripped.endswith(("！", "!")) or (stripped.endswith(("。", ".")) and not stripped.endswith(("…", "..."))):
        return None
    core = stripped.rstrip("？?" + _TRAILING).rstrip(_CLOSERS)
    # Only the last clause carries the question intonation.
    last_clause = re.split(r"[，,；;：:。！!]", core)[-1] if core else ""
    kind: str | None = None
    if core.endswith(_YES_NO_PARTICLES) and not core.endswith(_NOT_PARTICLE_ME):
        kind = "yes_no"
    elif _PERFECT_NOT.search(core):
        kind = "yes_no"
    elif _A_NOT_A.search(last_clause) and not _NOT_QUESTION.search(last_clause):
        kind = "a_not_a"
    elif "还是" in last_clause:
        kind = "alternative"
    elif _WH_WORDS.search(last_clause) and not _NOT_QUESTION.search(last_clause):
        kind = "wh"
    elif core.endswith(_WH_PARTICLES):
        kind = "wh"
    if ends_question:
        return kind or "yes_no"  # 你去？ — rising intonation alone
    if kind == "wh" and not core.endswith(_WH_PARTICLES) and not _WH_WORDS.search(last_clause[-6:]):
        # 我知道为什么他没来 (no mark, wh-word far from the end): an embedded question, a statement.
        return None
    if kind == "yes_no" and core.endswith("吧"):
        return None  # 我们走吧 — a suggestion unless punctuated as a question
    return kind


def is_question(text: str) -> bool:
    """Whether the sentence should be spoken as a question (raised final pitch)."""
    return question_kind(text) is not None
