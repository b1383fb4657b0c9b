"""Tones as spoken: neutral tones, 一 and 不, third-tone sandhi, over segmented words.

Input: words (a segmentation of one run of Chinese characters) and each word's dictionary
("citation") pinyin, tone digit last, 5 = neutral. Output: the same shape, tones as a Beijing
Mandarin speaker reads them, in the conventions of the Biaobei (CSMSC) surface labels.

Order matters: neutral tones first (a neutral syllable takes no part in 3-3 sandhi), then 一/不
(they look at the next syllable's *citation* tone), then third-tone sandhi.

Erhua is not here: it changes the number of syllables, so ``g2p_zh`` merges 儿 itself.

These rules are the first pass. ``g2p_zh`` then hands them to the trained tone corrector
(``tone_model``), which reads them without the learned word list and the list's tones as a
separate input, and has the last word on each tone digit it is confident about.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

# Words whose syllables a speaker reads with the neutral tone (or, rarely, the reverse),
# learned from the Biaobei labels 000001–009000: ``word<TAB>tones`` where tones has one
# character per syllable: a digit to force that tone, ``.`` to leave it.
_NEUTRAL_FILE = "neutral_tone_words.txt"

_NUMERALS = set("零〇一二三四五六七八九十百千万亿两幺")
# 一 keeps its first tone inside numbers and ordinals, and after these.
_YI_FIRST_AFTER = set("第初十")
# Except where it starts a number before a place value: 一百 yi4 bai3, 一万 yi2 wan4 (Biaobei
# 000001-008000: 28 of 28; after another numeral, 十一万, it stays yi1).
_PLACE_VALUES = set("百千万亿")
# Where 一 names the digit 1 rather than counting something, it keeps tone 1 whatever follows
# (issue 16: 一点五 yi1, 零点一度 yi1, 六月一日 yi1, 一号楼 yi1; the quantity 一件, 一小时 still
# changes). The normalizer writes these shapes for decimals, versions, addresses, dates and floors.
_DAY_PARTS = ("凌晨", "早上", "上午", "中午", "下午", "傍晚", "晚上", "夜里", "半夜")
_ORDINAL_AFTER = ("月", "号", "楼", "单元", "年级", "等奖", "级", "档", "挡")  # 能效一级, 调到一档
_BETWEEN_NUMBERS = set("点时比加减乘")
_TO_A_FLOOR = set("在到达于去往回")
_BEFORE_A_COUNT = set("上下这那每哪")


def names_digit_one(chars: str, i: int) -> bool:
    """Whether the 一 at ``chars[i]`` stands for the digit 1 (tone 1), not the quantity one."""
    before, after = chars[max(0, i - 2) : i], chars[i + 1 : i + 3]
    prev, nxt = before[-1:], after[:1]
    if prev in _BETWEEN_NUMBERS and before[:1] in _NUMERALS and len(before) == 2 and nxt != "刻":
        return True  # 零点一, 三点一点零, 九时一分, 一比一, 一加一 (but 十点一刻: a quarter)
    if nxt in _BETWEEN_NUMBERS and after[1:] in _NUMERALS and len(after) == 2:
        return True  # 一点五, 一比零
    if nxt == "点" and (after[1:] in ("钟", "整", "半") or before in _DAY_PARTS):
        return True  # 凌晨一点, 一点整 (a clock, not 快一点)
    if (chars.startswith(_ORDINAL_AFTER, i + 1) and prev not in _BEFORE_A_COUNT) or (nxt == "日" and prev == "月"):
        return True  # 一月, 一号线, 一楼, 一单元, 六月一日 (but 上一级, 这一号: counted)
    if nxt == "层" and prev in _TO_A_FLOOR:
        return True  # 餐厅在一层 (a floor; 有一层 counts)
    return prev == "之" and nxt not in _PLACE_VALUES  # 百分之一, 原因之一 (百分之一百: 一百 as ever)


# Single-syllable grammatical words read without tone.
_PARTICLES = {"的": "de5", "地": "de5", "得": "de5", "吗": "ma5", "呢": "ne5", "吧": "ba5", "啊": "a5",
              "么": "me5", "嘛": "ma5", "呀": "ya5", "啦": "la5", "哇": "wa5", "喽": "lou5"}
_SUFFIX_NEUTRAL = {"们": "men5", "么": "me5"}


def word_table(name: str) -> list[tuple[str, str]]:
    """``word<TAB>value`` rows of a learned word list in the package data (``#`` comments);
    none when the file is missing."""
    try:
        text = (resources.files("wyoming_indextts") / "data" / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows = (line.partition("\t") for line in text.splitlines() if line and not line.startswith("#"))
    return [(word, value) for word, _, value in rows]


@lru_cache(maxsize=1)
def neutral_words() -> dict[str, str]:
    return {word: tones for word, tones in word_table(_NEUTRAL_FILE) if len(tones) == len(word)}


def tone(syllable: str) -> str:
    return syllable[-1] if syllable[-1:].isdigit() else "5"


def _with_tone(syllable: str, digit: str) -> str:
    return (syllable[:-1] if syllable[-1:].isdigit() else syllable) + digit


def listed(words: Sequence[str]) -> list[str]:
    """Per character, the tone the learned word list gives it, ``.`` where it gives none."""
    table = neutral_words()
    return [c for word in words for c in table.get(word, "." * len(word))]


def neutralize(words: Sequence[str], pinyins: list[list[str]], locked: Sequence[bool] = (),
               word_list: bool = True) -> None:
    """Neutral tones, in place: learned word list, particles, suffixes, reduplicated syllables."""
    table = neutral_words() if word_list else {}
    for w, (word, syllables) in enumerate(zip(words, pinyins)):
        if locked and locked[w]:
            continue
        pattern = table.get(word)
        if pattern:
            for k, digit in enumerate(pattern):
                if digit != ".":
                    syllables[k] = _with_tone(syllables[k], digit)
            continue
        if len(word) == 1 and word in _PARTICLES and syllables[0].startswith(_PARTICLES[word][:-1]):
            syllables[0] = _PARTICLES[word]
        elif len(word) >= 2:
            last = word[-1]
            if last in _SUFFIX_NEUTRAL:
                syllables[-1] = _SUFFIX_NEUTRAL[last]
            elif len(word) == 2 and word[0] == word[1] and tone(syllables[0]) != "5":
                # 妈妈, 看看, 谢谢: the repeated syllable is light.
                syllables[1] = _with_tone(syllables[1], "5")


def yi_bu(words: Sequence[str], pinyins: list[list[str]], locked: Sequence[bool] = ()) -> None:
    """一 and 不 before other syllables, in place (tones they take from the next *citation* tone)."""
    flat = [(w, k) for w, word in enumerate(words) for k in range(len(word))]
    chars = "".join(words)
    for i, (w, k) in enumerate(flat):
        char = chars[i]
        if char not in "一不" or (locked and locked[w]):
            continue
        syllable = pinyins[w][k]
        nxt = tone(pinyins[flat[i + 1][0]][flat[i + 1][1]]) if i + 1 < len(flat) else None
        if char == "不":
            if not syllable.startswith("bu"):
                continue
            if nxt == "4":
                pinyins[w][k] = "bu2"
            continue
        if not syllable.startswith("yi"):
            continue
        prev_char = chars[i - 1] if i else ""
        next_char = chars[i + 1] if i + 1 < len(chars) else ""
        word = words[w]
        if (
            nxt is None
            or names_digit_one(chars, i)
            or prev_char in _YI_FIRST_AFTER
            or prev_char in _NUMERALS
            or (next_char in _NUMERALS and next_char not in _PLACE_VALUES)
            or (k == len(word) - 1 and len(word) > 1)  # 统一, 唯一, 万一
        ):
            pinyins[w][k] = "yi1"
        elif prev_char and prev_char == next_char:
            pinyins[w][k] = "yi5"  # 看一看
        elif nxt in "45":
            pinyins[w][k] = "yi2"
        else:
            pinyins[w][k] = "yi4"


def keep_digit_one(words: Sequence[str], pinyins: list[list[str]], locked: Sequence[bool] = ()) -> None:
    """Tone 1 again, in place, on every 一 that names a digit (:func:`names_digit_one`): the tone
    corrector learned 了一点 as "a little" (yi4) and would read 上涨了一点零一元 so."""
    chars = "".join(words)
    if "一" not in chars:
        return
    i = 0
    for w, word in enumerate(words):
        for k, char in enumerate(word):
            if char == "一" and not (locked and locked[w]) and pinyins[w][k].startswith("yi") and names_digit_one(chars, i + k):
                pinyins[w][k] = "yi1"
        i += len(word)


def third_tone(words: Sequence[str], pinyins: list[list[str]], locked: Sequence[bool] = ()) -> None:
    """3-3 → 2-3, in place.

    Inside a word every third tone before another third tone rises, except that a run of four
    splits 2+2 (展览馆 zhan2 lan2 guan3, 永远美好 ...). Across words it applies at every word
    boundary of the run (a punctuation break resets: ``words`` is one unpunctuated run): the
    Biaobei speaker joins most of them whatever the words' lengths (1-8000: 2,595 of 3,400;
    even after a word of three or more before a longer word, 49 of 87). Where the speaker
    breaks (a phrase boundary: 老板 | 已经) is the tone corrector's call.
    """
    tones = [[tone(s) for s in syllables] for syllables in pinyins]
    # Inside words, right to left so each decision looks at the *underlying* next tone.
    for w, syllables in enumerate(pinyins):
        if locked and locked[w]:
            continue
        t = tones[w]
        n = len(t)
        k = 0
        while k < n:
            if t[k] != "3":
                k += 1
                continue
            end = k
            while end + 1 < n and t[end + 1] == "3":
                end += 1
            run = end - k + 1
            if run == 4:
                rising = [k, k + 2]
            else:
                rising = list(range(k, end))
            for r in rising:
                syllables[r] = _with_tone(syllables[r], "2")
            k = end + 1
    # Across words: the last syllable of a word before a word starting with a third tone.
    for w in range(len(words) - 1):
        if locked and locked[w]:
            continue
        if tones[w][-1] == "3" and tones[w + 1][0] == "3" and tone(pinyins[w][-1]) == "3":
            pinyins[w][-1] = _with_tone(pinyins[w][-1], "2")


def apply(words: Sequence[str], pinyins: Sequence[Sequence[str]], locked: Sequence[bool] = (),
          word_list: bool = True) -> list[list[str]]:
    """Spoken tones for one unpunctuated run of words. ``locked`` words (user lexicon) are left as given.

    ``word_list=False``: without the learned neutral-tone list (the tone corrector reads the
    list as an input of its own, see ``tone_model``).
    """
    out = [list(p) for p in pinyins]
    neutralize(words, out, locked, word_list)
    yi_bu(words, out, locked)
    third_tone(words, out, locked)
    return out
