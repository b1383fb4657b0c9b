"""Mixed Chinese/English text: no English word is dropped, and each is spoken by the right voice.

Strategy (frontend/segment.py): inside a Chinese sentence, a Latin run that is one token
of 1-4 capital letters (or a single letter) is an acronym read with Chinese letter names by
the Chinese voice; every other Latin word is an English span, spoken by the English voice
and spliced into the Chinese audio at the stream's rate.
"""

from __future__ import annotations

import re

import pytest
from wyoming.tts import Synthesize

from conftest import ServerProcess, exchange, speech_like
from wyoming_indextts.frontend import Frontend, Sentence
from wyoming_indextts.frontend.g2p_zh import LETTER_PINYIN
from wyoming_indextts.frontend.segment import split_scripts

EXAMPLES = ["打开Home Assistant的客厅灯", "PM2.5浓度是35", "Wi-Fi密码已更新"]


@pytest.fixture(scope="module")
def frontend() -> Frontend:
    return Frontend()


def spans_of(sentence: Sentence) -> list[tuple[str, str]]:
    return [(s.language, s.text if s.language == "en" else " ".join(x.pinyin for x in s.syllables)) for s in sentence.spans]


def test_examples_give_the_expected_span_sequence(frontend: Frontend) -> None:
    home, pm, wifi = (frontend.sentences(t) for t in EXAMPLES)
    assert [s.language for s in home[0].spans] == ["zh", "en", "zh"]
    assert home[0].spans[1].text == "Home Assistant"
    assert [s.pinyin for s in home[0].spans[0].syllables] == ["da3", "kai1"]
    # PM is an acronym: Chinese letter names, then the number in Chinese.
    assert spans_of(pm[0])[0][0] == "zh"
    assert spans_of(pm[0])[0][1].startswith("pi1 ai2 mu5 er4 dian")  # 点 may take third-tone sandhi
    assert [s.language for s in wifi[0].spans] == ["en", "zh"]
    assert wifi[0].spans[0].text == "Wi-Fi"


@pytest.mark.parametrize(
    "text",
    [
        *EXAMPLES,
        "请把iPhone连上Apple TV，然后打开USB调试。",
        "A区和B区的light都关了吗？",
        "明天的meeting改到下午three o'clock。",
    ],
)
def test_every_latin_letter_is_spoken(frontend: Frontend, text: str) -> None:
    """Each Latin word of the input is either in an English span or read letter by letter."""
    for sentence in frontend.sentences(text):
        english = " ".join(s.text for s in sentence.spans if s.language == "en")
        letter_positions = {x.index for s in sentence.spans if s.language == "zh" for x in s.syllables if x.char.isascii()}
        for word in re.finditer(r"[A-Za-z]+", sentence.normalized):
            in_english = re.search(rf"(?<![A-Za-z]){re.escape(word.group())}(?![A-Za-z])", english) is not None
            spelled = all(i in letter_positions for i in range(word.start(), word.end()))
            assert in_english or spelled, (word.group(), sentence.spans)


def test_acronym_rule() -> None:
    kinds = {r.text: r.kind for r in split_scripts("PM和USB和TV和WIFI和WiFi和Wi-Fi和iOS和A和x和HOMEKIT")}
    assert kinds["PM"] == kinds["USB"] == kinds["TV"] == kinds["WIFI"] == kinds["A"] == kinds["x"] == "letters"
    assert kinds["WiFi"] == kinds["Wi-Fi"] == kinds["iOS"] == kinds["HOMEKIT"] == "en"
    assert set(LETTER_PINYIN) >= set("PMUSBTV")


def test_english_sentences_are_not_normalized_into_chinese(frontend: Frontend) -> None:
    (sentence,) = frontend.sentences("It is 25 degrees at 7:30.")
    assert [s.language for s in sentence.spans] == ["en"]
    # English normalization only (the clock time as espeak-ng should say it); no Chinese numerals.
    assert sentence.spans[0].text == "It is 25 degrees at 7 30."


async def test_mixed_text_keeps_the_english_words_in_the_audio(server: ServerProcess) -> None:
    with_english = await exchange(server.port, Synthesize(text="打开Home Assistant的客厅灯。").event())
    without = await exchange(server.port, Synthesize(text="打开的客厅灯。").event())
    for received in (with_english, without):
        assert received.types[-1] == "audio-stop"
        assert received.rate == 24000  # one format: the Chinese voice's, English spliced in
        assert speech_like(received.audio, received.rate)
    # "Home Assistant" takes the best part of a second to say.
    assert with_english.duration > without.duration + 0.5


async def test_english_text_to_the_chinese_default_is_spoken_in_english(server: ServerProcess) -> None:
    received = await exchange(server.port, Synthesize(text="Good morning, the kitchen light is on.").event())
    assert received.types[-1] == "audio-stop"
    assert received.rate == 24000
    assert speech_like(received.audio, received.rate)
    assert received.duration > 1.5
