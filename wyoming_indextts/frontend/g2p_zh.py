"""Mandarin grapheme-to-phoneme: words, toned pinyin as spoken, letters by Chinese letter names.

Per sentence:

1. Segment: user-lexicon words first (longest match, never cut apart), jieba (dictionary only,
   no HMM) for the rest.
2. Dictionary readings: pypinyin's phrase dictionary for whole words, its character dictionary
   otherwise (both held compactly by ``dictionaries.py``, as is jieba's).
3. Polyphones (行, 长, 了, 得 ...): the BiLSTM in ``polyphone.py`` reads the whole sentence and
   scores the character's readings; the phrase dictionary's readings weigh in (the word jieba
   cut, and every dictionary word around the character), and so does the part of speech the
   lexical analyser (``lexical.py``, run once per sentence) gives the character's word, see
   PolyphoneWeights; inside a person's or place name the name's reading weighs in too
   (``word_readings.py``).
4. Tones as spoken (``tone_sandhi.py``): neutral tones, 一/不, third-tone sandhi; then the
   tone corrector (``tone_model.py``), a small BiLSTM trained on the Biaobei labels, revises
   the tone digits it is confident about (never the syllable).
5. Erhua: 儿 closing a word (一会儿, 哪儿, 玩儿) merges into the syllable before it, Biaobei
   style: 一会儿 → ``yi2 huir4``.

Erhua and the per-character contract: a merged 儿 has no reading of its own. The merged
reading sits at 儿's position (``char`` 儿, ``index`` of 儿, pinyin ``huir4``), and the
character before it gets none, so 一会儿 gives two readings for three characters. This is the
one case where ``Sentence.pinyin`` has fewer entries than Chinese characters: one entry per
spoken syllable, exactly as the Biaobei surface labels write it, and the prosodic boundary
after 儿 lands after 儿 in ``Sentence.prosody``. The engine turns ``huir4`` into ``h ui4 er5``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from . import tone_sandhi
from .dictionaries import Dictionaries, PhraseTable, default_dictionaries
from .lexical import Analysis, LexicalAnalyzer, default_analyzer
from .word_readings import NameReadings, PosPreferences, default_name_readings, default_pos_preferences
from .polyphone import PolyphoneModel, default_model
from .tone_model import Run, ToneModel
from .tone_model import default_model as default_tone_model
from .sentence import is_hanzi

# How Chinese speakers name Latin letters, in pinyin the default voice can say.
LETTER_PINYIN: dict[str, tuple[str, ...]] = {
    "A": ("ei1",), "B": ("bi4",), "C": ("xi1",), "D": ("di4",), "E": ("yi4",),
    "F": ("ai2", "fu5"), "G": ("ji4",), "H": ("ai1", "qi1"), "I": ("ai4",),
    "J": ("jie4",), "K": ("kei4",), "L": ("ai2", "lou5"), "M": ("ai2", "mu5"),
    "N": ("en1",), "O": ("ou1",), "P": ("pi1",), "Q": ("kiu1",), "R": ("a4",),
    "S": ("ai2", "si1"), "T": ("ti4",), "U": ("you1",), "V": ("wei1",),
    "W": ("da2", "bu5", "liu5"), "X": ("ai2", "ke4", "si1"), "Y": ("wai4",), "Z": ("zei4",),
}

@dataclass(frozen=True)
class PolyphoneWeights:
    """How a polyphone's reading is chosen: the model's log-probability of each candidate
    (sharpened or flattened by ``temperature``, never below log ``floor``), plus ``phrase_bonus``
    for the reading of the dictionary word jieba cut (multi-character dictionary words are very
    reliable: with the defaults the model must be e^5 ≈ 150 times surer to overrule one), plus
    ``cover_bonus`` times the share of all phrase-dictionary words around the character (2-5
    characters, whatever jieba cut) that read it so. The defaults were chosen by cross-validation
    on CPP dev: tools/train_polyphone.py crossval."""

    temperature: float = 1.0
    floor: float = 1e-9
    phrase_bonus: float = 5.0
    cover_bonus: float = 2.0
    # Weight of the part-of-speech preference (PosPreferences.preference: how much likelier each
    # reading is for this character with this part of speech than for the character at all).
    pos_bonus: float = 1.0
    # For the reading a name gives the character (NameReadings): a bonus, not an override, so a
    # model that is sure still wins where the analyser took a word for a name (翟衣, 缪斯). On
    # CPP dev (5-fold) 4 cost nothing where an override cost 2 sentences; it gains 3 Biaobei ones.
    name_bonus: float = 4.0

    def choose(self, score: dict[str, float], current: str, phrase: bool, votes: Counter[str],
               preference: dict[str, float] | None = None, name: str | None = None) -> str:
        """The reading among ``score``'s candidates; ``current`` is the dictionary's, ``phrase``
        whether it comes from a phrase-dictionary word, ``votes`` those of the words around,
        ``preference`` what the part of speech of the character's word says (log-ratios),
        ``name`` the reading a person's or place name gives it."""
        logs = {r: math.log(max(p, 1e-12)) / self.temperature for r, p in score.items()}
        top = max(logs.values())
        norm = top + math.log(sum(math.exp(v - top) for v in logs.values()))
        floor = math.log(self.floor)
        voters = sum(votes.values())

        def weight(reading: str) -> float:
            value = max(logs[reading] - norm, floor)
            if phrase and reading == current:
                value += self.phrase_bonus
            if voters:
                value += self.cover_bonus * votes[reading] / voters
            if preference:
                value += self.pos_bonus * preference.get(reading, 0.0)
            if reading == name:
                value += self.name_bonus
            return value

        best = max(score, key=weight)
        # A dictionary word's neutral tone is deliberate (桌子 zhuo1 zi5): keep it.
        if phrase and current.endswith("5") and current[:-1] == best[:-1]:
            return current
        return best


# 调 before 到/至 and a number or 最 is adjusting a device to a setting (把温度调到二十三度,
# 调到最高), tiáo. The model reads 调到 as diào (transferred to), as Wikipedia mostly uses it.
_ADJUST_TO = re.compile(r"调(?=[到至][零一二两三四五六七八九十百最])")

# For most polyphones the model leads. For the characters in DICTIONARY_FIRST_FILE it is flattened
# (temperature 3, probabilities floored at 1 %) and the dictionary words around weigh more: CPP,
# which g2pM learned from, labels some characters nearly always one way (的 de5, 着 zhe5, 空
# kong1, 中 zhong1), so the model is sure of that reading in every context (的确, 着火, 有空,
# 命中). Which characters: those whose readings in the Biaobei labels come out better this way
# (tools/train_polyphone.py dictionary-first).
MODEL_FIRST = PolyphoneWeights()
DICTIONARY_FIRST = PolyphoneWeights(temperature=3.0, floor=0.01, cover_bonus=4.0)
DICTIONARY_FIRST_FILE = "dictionary_first.txt"


@lru_cache(maxsize=1)
def dictionary_first_chars() -> frozenset[str]:
    return frozenset(char for char, _ in tone_sandhi.word_table(DICTIONARY_FIRST_FILE))


_COVER_MAX = 5  # longest phrase-dictionary word looked up around a polyphone

# Words ending in 儿 where 儿 is a syllable of its own (a child, a son ...), not erhua.
NOT_ERHUA = frozenset(
    "女儿 婴儿 孤儿 幼儿 健儿 宠儿 胎儿 患儿 少儿 男儿 托儿 儿 新生儿 混血儿 弃儿 孩儿 侄儿 "
    "犬儿 孙儿 幸运儿 低能儿 育婴儿 乳儿 小儿 病儿 产儿 早产儿 畸形儿 弄潮儿 中国儿 宁馨儿".split()
)


# Spoken units ending in 儿 and whether the Biaobei speaker merges 儿 (erhua, ``1``) or says it
# as a syllable (``0``), learned from 000001–009000 by ``tools/train_tones.py erhua``. The key is
# the word that ends in 儿, or, where 儿 was cut off as a word of its own, the word before it + 儿.
_ERHUA_FILE = "erhua_words.txt"


@lru_cache(maxsize=1)
def erhua_words() -> dict[str, bool]:
    return {word: merged == "1" for word, merged in tone_sandhi.word_table(_ERHUA_FILE)}


def erhua_key(texts: list[str], w: int, k: int) -> str | None:
    """The unit 儿 at ``texts[w][k]`` would merge into, or None where it never merges.

    儿 starting or inside a word (儿子, 幼儿园) is a syllable; closing a word (那儿, 女儿) the
    key is the word; cut off alone (老汉 | 儿) it is the word before it + 儿.
    """
    word = texts[w]
    if k < len(word) - 1:
        return None
    if len(word) > 1:
        return None if word.startswith("儿") else word
    return texts[w - 1] + word if w > 0 else None


def guess_erhua(texts: list[str], w: int, closes_word: bool) -> bool:
    """Whether 儿 closing ``texts[w]`` merges, for a unit the learned table has not seen.

    ``closes_word``: whether the lexical analyser ends a word at this 儿. Where its word goes on
    (首都儿研所, 托儿所), 儿 is a morpheme of its own, said as a syllable: in Biaobei 1–9000, 78 of
    81 such 儿 (the three merged ones, as in 玩儿过, are units the table knows).

    The common diminutives after one character (这儿, 玩儿) are in the table, so a lone 儿
    after an unseen one-character word is mostly "son" or a name (救 | 儿, 俺 | 儿, 妍 | 儿);
    after a longer word it is mostly an erhua word jieba does not know (胡同 | 儿, 房檐 | 儿).
    A reduplicated syllable before it (妥 | 妥 | 儿) is the AA儿 adverb form, which takes erhua
    (好好儿, 慢慢儿: jieba knows those as words).
    ``tools/train_tones.py erhua --crossval`` counts how often this is right on unseen units.
    """
    if not closes_word:
        return False
    word = texts[w]
    if len(word) > 1:
        return word not in NOT_ERHUA
    if w > 1 and len(texts[w - 1]) == 1 and texts[w - 1] == texts[w - 2]:
        return True
    return w > 0 and len(texts[w - 1]) > 1


@dataclass(frozen=True)
class Reading:
    """The pinyin of one character or letter, and whether it starts a word."""

    index: int
    char: str
    pinyin: tuple[str, ...]
    word_start: bool


@dataclass
class _Word:
    start: int
    text: str
    pinyin: list[str]
    locked: bool = False  # from the user lexicon: no model, no sandhi
    phrase: bool = False  # a multi-character entry of the phrase dictionary


class G2PZh:
    """Text → readings. ``lexicon`` maps words to space-separated pinyin and wins over everything.

    Thread-safe: no state changes after construction.
    """

    def __init__(self, lexicon: dict[str, str] | None = None, model: PolyphoneModel | None = None,
                 tone_model: ToneModel | None = None, correct_tones: bool = True,
                 dictionaries: Dictionaries | None = None, weights: PolyphoneWeights = MODEL_FIRST,
                 dictionary_first: frozenset[str] | None = None, analyzer: LexicalAnalyzer | None = None,
                 pos_preferences: PosPreferences | None = None, name_readings: NameReadings | None = None) -> None:
        self._lexicon = {w: tuple(p.split()) for w, p in (lexicon or {}).items() if len(p.split()) == len(w)}
        self._longest = max((len(w) for w in self._lexicon), default=0)
        self._model = model or default_model()
        # correct_tones=False: the rules of tone_sandhi alone (benchmarks compare the two).
        self._tone_model = (tone_model or default_tone_model()) if correct_tones else None
        # jieba's and pypinyin's dictionaries, compact (shared by all G2PZh of the process by default).
        self._dictionaries = dictionaries or default_dictionaries()
        self._cut = self._dictionaries.cut
        # How polyphones are weighed (the training tools try others), and the characters weighed
        # with DICTIONARY_FIRST instead (default: the shipped list).
        self._weights = weights
        self._dictionary_first = dictionary_first_chars() if dictionary_first is None else dictionary_first
        # The lexical analyser (words, parts of speech, names) and what its output says about readings.
        self._analyzer = analyzer or default_analyzer()
        self._pos = default_pos_preferences() if pos_preferences is None else pos_preferences
        self._pos_table = self._pos.table(self._model.candidates)
        self._names = default_name_readings() if name_readings is None else name_readings

    # -- public -----------------------------------------------------------------------------

    def __call__(self, text: str) -> list[Reading]:
        return self.analyze(text)[0]

    def lexical(self, text: str) -> Analysis:
        """The lexical analysis of ``text`` (what ``analyze`` reads when it is not given one)."""
        return self._analyzer(text)

    def analyze(self, text: str, analysis: Analysis | None = None) -> tuple[list[Reading], list[str]]:
        """Readings as spoken, and the dictionary reading of every character (see ``citation``),
        from one pass: segmentation and the polyphone model are the expensive part of both.
        ``analysis``: the sentence's lexical analysis, if the caller has made it already."""
        words = self._words(text)
        analysis = self._analysis(text, analysis)
        self._disambiguate(text, words, analysis)
        citation = self._citation(text, words)
        # Runs of Chinese words (tones as spoken are decided per run, all runs of the sentence
        # through the tone corrector at once) and the letters between them, in order.
        pieces: list[tuple[list[_Word], list[list[str]]] | _Word] = []
        run: list[_Word] = []
        for word in words + [None]:
            if word is not None and word.pinyin:
                run.append(word)
                continue
            if run:
                pieces.append((run, self._rule_tones(run)))
                run = []
            if word is not None:
                pieces.append(word)
        if self._tone_model is not None:
            self._tone_model.correct([
                Run([w.text for w in r], [w.pinyin for w in r], spoken,
                    tone_sandhi.listed([w.text for w in r]), run_segmentation(r, analysis), [w.locked for w in r])
                for r, spoken in (p for p in pieces if isinstance(p, tuple))
            ])
            for r, spoken in (p for p in pieces if isinstance(p, tuple)):
                tone_sandhi.keep_digit_one([w.text for w in r], spoken, [w.locked for w in r])
        readings: list[Reading] = []
        for piece in pieces:
            if isinstance(piece, tuple):
                readings.extend(self._spoken(*piece, analysis))
                continue
            for offset, char in enumerate(piece.text):
                letter = LETTER_PINYIN.get(char.upper()) if char.isascii() else None
                if letter:
                    readings.append(Reading(piece.start + offset, char, letter, True))
        return readings, citation

    def citation(self, text: str, analysis: Analysis | None = None) -> list[str]:
        """Dictionary reading of every character ('' for non-Chinese), polyphones resolved, no sandhi."""
        words = self._words(text)
        self._disambiguate(text, words, self._analysis(text, analysis))
        return self._citation(text, words)

    def _analysis(self, text: str, given: Analysis | None) -> Analysis:
        return given if given is not None and given.text == text else self._analyzer(text)

    @staticmethod
    def _citation(text: str, words: list[_Word]) -> list[str]:
        out = [""] * len(text)
        for word in words:
            for offset, syllable in enumerate(word.pinyin):
                out[word.start + offset] = syllable
        return out

    # -- steps -------------------------------------------------------------------------------

    def _words(self, text: str) -> list[_Word]:
        """Lexicon words, Chinese words with dictionary readings, and non-Chinese stretches (no pinyin)."""
        words: list[_Word] = []
        i = 0
        pending_start = 0
        while i <= len(text):
            match = None
            if i < len(text) and self._longest:
                match = next(
                    (text[i : i + n] for n in range(min(self._longest, len(text) - i), 0, -1)
                     if text[i : i + n] in self._lexicon),
                    None,
                )
            if match is None and i < len(text):
                i += 1
                continue
            if pending_start < i:
                words.extend(self._segment(text[pending_start:i], pending_start))
            if match is None:
                break
            words.append(_Word(i, match, list(self._lexicon[match]), locked=True))
            i += len(match)
            pending_start = i
        return words

    def _segment(self, text: str, offset: int) -> list[_Word]:
        words: list[_Word] = []
        position = offset
        for piece in self._cut(text):
            start = position
            position += len(piece)
            if not all(is_hanzi(c) for c in piece):
                # Mixed or non-Chinese: Chinese characters in it are read one by one.
                for k, char in enumerate(piece):
                    if is_hanzi(char):
                        words.append(_Word(start + k, char, list(self._dictionaries.reading(char))))
                    else:
                        words.append(_Word(start + k, char, []))
                continue
            phrase = self._dictionaries.phrases.readings(piece) if len(piece) > 1 else None
            if phrase and len(phrase) == len(piece):
                words.append(_Word(start, piece, list(phrase), phrase=True))
            else:
                words.append(_Word(start, piece, list(self._dictionaries.reading(piece))))
        return words


    def _disambiguate(self, text: str, words: list[_Word], analysis: Analysis) -> None:
        """Polyphones in place: the model's scores weighed with the phrase dictionary's readings
        and the part of speech of the character's word; readings inside names."""
        targets = [
            (word, k)
            for word in words
            if not word.locked and word.pinyin
            for k, char in enumerate(word.text)
            if self._model.is_polyphone(char)
        ]
        if not targets:
            return
        scores = self._model.scores(text, [word.start + k for word, k in targets])
        spans = [(w.start, w.start + len(w.text)) for w in words if len(w.text) > 1]
        for (word, k), score in zip(targets, scores):
            if not score:
                continue
            index = word.start + k
            weights = DICTIONARY_FIRST if text[index] in self._dictionary_first else self._weights
            votes = _phrase_votes(self._dictionaries.phrases, text, index, spans)
            lexical = analysis.word_of(index)
            preference = self._pos_table.get((text[index], lexical.tag))
            if preference and votes and _unsure(analysis, index, self._pos.min_confidence):
                # LAC hesitates over the tag and the dictionary words around read the character
                # otherwise than the tag prefers (请按时还书: 还 adverb 0.65 → hái, the word
                # 还书 → huán): the words decide, with the model.
                favourite = max(preference, key=preference.__getitem__)
                if votes[favourite] < max(votes.values()):
                    preference = None
            name = self._names.reading(lexical, index)
            word.pinyin[k] = weights.choose(score, word.pinyin[k], word.phrase, votes, preference, name)
            if _ADJUST_TO.match(text, index):
                word.pinyin[k] = "tiao2"
            elif word.text == "地" and _is_adverbial_de(text, words, word):
                word.pinyin[k] = "de5"

    def _rule_tones(self, run: list[_Word]) -> list[list[str]]:
        """The rules' tones for a run; with the tone corrector, without the word list, which
        the corrector reads as an input of its own."""
        return tone_sandhi.apply([w.text for w in run], [w.pinyin for w in run], [w.locked for w in run],
                                 word_list=self._tone_model is None)

    def _spoken(self, run: list[_Word], spoken: list[list[str]], analysis: Analysis) -> list[Reading]:
        """Readings of a run with its spoken tones; erhua merges 儿 here."""
        readings: list[Reading] = []
        for w, (word, syllables) in enumerate(zip(run, spoken)):
            for k, (char, syllable) in enumerate(zip(word.text, syllables)):
                if char == "儿" and readings and self._is_erhua(run, w, k, word_ends_at(analysis, word.start + k)):
                    before = readings.pop()
                    base = before.pinyin[0]
                    merged = base[:-1] + "r" + base[-1]
                    readings.append(Reading(word.start + k, char, (merged,), before.word_start))
                    continue
                readings.append(Reading(word.start + k, char, (syllable,), k == 0))
        return readings

    @staticmethod
    def _is_erhua(run: list[_Word], w: int, k: int, closes_word: bool) -> bool:
        word = run[w]
        if word.locked or not word.pinyin[k].startswith("er"):
            return False
        if w > 0 and len(word.text) == 1 and run[w - 1].locked:
            return False
        key = erhua_key([r.text for r in run], w, k)
        if key is None:
            return False
        learned = erhua_words().get(key)
        return learned if learned is not None else guess_erhua([r.text for r in run], w, closes_word)


def run_segmentation(run: list[_Word], analysis: Analysis) -> list[tuple[int, int]]:
    """Per character of a run, the analyser's (place in its word, tag id): what the tone
    corrector reads (``Analysis.segmentation``)."""
    tags = analysis.segmentation
    return [tags[w.start + k] for w in run for k in range(len(w.text))]


def word_ends_at(analysis: Analysis, index: int) -> bool:
    """Whether the lexical analysis ends a word at character ``index``."""
    return analysis.word_of(index).end == index + 1


def _unsure(analysis: Analysis, index: int, threshold: float) -> bool:
    """Whether the analyser's confidence in the tag of the word at ``index`` is below ``threshold``."""
    return analysis.confidence is not None and float(analysis.confidence[index]) < threshold


def _is_adverbial_de(text: str, words: list[_Word], word: _Word) -> bool:
    """地 as the particle after an adverbial (高兴地说, 慢慢地变暗): a word of its own, after a
    Chinese word of two or more characters, before a Chinese character. The model reads it di4
    (CPP labels 地 as the noun 19 times in 20); in the Biaobei labels a lone 地 after such a
    word is de5 77 times in 86. After one character (一地, 三地) or before punctuation
    (主要地：) it stays the noun."""
    position = words.index(word)
    before = words[position - 1].text if position else ""
    after = text[word.start + 1 : word.start + 2]
    return len(before) >= 2 and all(is_hanzi(c) for c in before) and is_hanzi(after)


def _phrase_votes(phrases: PhraseTable, text: str, index: int,
                  words: Sequence[tuple[int, int]] = ()) -> Counter[str]:
    """The reading of ``text[index]`` in each phrase-dictionary word of 2-5 Chinese characters
    that contains it (overlapping words included: jieba keeps only one cut), except those that
    cut through one of ``words`` (spans of jieba's words of two or more characters): in
    公交|还有 the phrase 交还 would split 公交."""
    votes: Counter[str] = Counter()
    for start in range(max(0, index - _COVER_MAX + 1), index + 1):
        for end in phrases.ends(text, start, max(index + 1, start + 2), min(len(text), start + _COVER_MAX)):
            if any(a < start < b < end or start < a < end < b for a, b in words):
                continue
            phrase = phrases.readings(text[start:end])
            if phrase and len(phrase) == end - start:
                votes[phrase[index - start]] += 1
    return votes
