"""Front-end contract: inspection command, sentence splitting, lexicon, symbols for the default voice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pypinyin import Style, pinyin_dict

from wyoming_indextts.engines.fastspeech2 import sentence_symbols, split_pinyin, syllable_symbols
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.frontend.lexicon import LexiconError, load_lexicon
from wyoming_indextts.frontend.segment import complete_prefix, split_sentences
from wyoming_indextts.frontend.sentence import is_hanzi

from conftest import REPO


def run_inspection(lines: list[str], *args: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "wyoming_indextts.frontend", *args],
        input="\n".join(lines) + "\n", capture_output=True, text=True, encoding="utf-8", cwd=REPO, check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_inspection_command_writes_one_record_per_line() -> None:
    lines = ["你真的要去银行取钱吗？", "客厅温度23.5°C，湿度60%。", "Hello world", "", "😀🚀\u200b\x07", "打开Wi-Fi", "你好"]
    records = run_inspection(lines)
    assert [r["text"] for r in records] == lines
    for record in records:
        assert set(record) == {"text", "normalized", "pinyin", "prosody", "citation"}
        hanzi = [c for c in str(record["normalized"]) if is_hanzi(c)]
        assert len(record["pinyin"]) == len(hanzi)  # type: ignore[arg-type]
        assert str(record["prosody"]).replace("#1", "").replace("#2", "").replace("#3", "").replace("#4", "") == record["normalized"]
        # One dictionary reading per character of the normalized text, '' where not Chinese.
        expected = [is_hanzi(c) for c in str(record["normalized"])] if hanzi else []
        assert [bool(c) for c in record["citation"]] == expected  # type: ignore[union-attr]
    # pinyin is as spoken (third-tone sandhi), citation as the dictionary has it.
    assert (records[-1]["pinyin"], records[-1]["citation"]) == (["ni2", "hao3"], ["ni3", "hao3"])
    first = records[0]
    assert first["pinyin"][5:7] == ["yin2", "hang2"]  # type: ignore[index]
    assert str(first["prosody"]).endswith("#4？")
    assert "23" not in str(records[1]["normalized"]) and "二十三点五" in str(records[1]["normalized"])


def test_lexicon_overrides_reading(tmp_path: Path) -> None:
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("# test\n银行\tyin2 xing2\n", encoding="utf-8")
    [record] = run_inspection(["你真的要去银行取钱吗？"], "--lexicon", str(lexicon))
    assert record["pinyin"][5:7] == ["yin2", "xing2"]  # type: ignore[index]


def test_lexicon_rejects_bad_lines(tmp_path: Path) -> None:
    lexicon = tmp_path / "bad.txt"
    lexicon.write_text("银行 yin hang\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="bad.txt:1"):
        load_lexicon(lexicon)


def test_sentences_split_at_terminal_punctuation_not_decimals() -> None:
    assert split_sentences("你好。今天2.5度！Hello world. How are you? 好的\n第二行") == [
        "你好。", "今天2.5度！", "Hello world.", "How are you?", "好的", "第二行",
    ]
    assert split_sentences("。。。！？") == []


def test_long_sentence_is_split_at_clauses_and_bounded() -> None:
    text = "一二三四五六七八九十" * 5 + "，" + "十九八七六五四三二一" * 5 + "。"
    pieces = split_sentences(text, max_chars=60)
    assert len(pieces) == 2 and "".join(pieces) == text
    assert all(len(p) <= 60 for p in split_sentences("好" * 500, max_chars=60))


def test_streamed_text_keeps_unfinished_numbers_back() -> None:
    assert complete_prefix("你好。今天2.") == ("你好。", "今天2.")
    assert complete_prefix("It is 2. Then") == ("It is 2.", " Then")
    assert complete_prefix("没有结束") == ("", "没有结束")


def test_frontend_never_raises_on_odd_text() -> None:
    frontend = Frontend()
    for text in ["", "！？。", "\x00\x01", "🙂" * 50, "a" * 1000, "①②③", "٣٤٥", "ｱｲｳ", "𠀀𠀁", "1" * 40, "--5--", "3/0"]:
        for sentence in frontend.sentences(text):
            assert isinstance(sentence.prosody, str)


@pytest.mark.parametrize(
    ("text", "language", "normalized"),
    [
        ("3+5=8。", "zh", "三加五等于八。"),  # no Chinese characters, but Chinese punctuation
        ("12:30。", "zh", "十二点三十分。"),
        ("PM2.5：35。", "zh", "PM二点五：三十五。"),  # an acronym is letters, not an English word
        ("The door is open。", "en", "The door is open。"),  # Latin words: English despite the full stop
        ("3+5=8", "en", "3+5=8"),  # nothing says Chinese: left to the English voice
    ],
)
def test_language_of_a_sentence_without_chinese_characters(text: str, language: str, normalized: str) -> None:
    sentence = Frontend().analyze(text)
    assert [span.language for span in sentence.spans] == [language]
    assert sentence.normalized == normalized


def test_question_is_detected() -> None:
    [sentence] = Frontend().sentences("你真的要去银行取钱吗？")
    assert sentence.is_question
    [statement] = Frontend().sentences("今天天气很好。")
    assert not statement.is_question


@pytest.mark.parametrize(
    ("pinyin", "symbols"),
    [
        ("zhi1", ["zh", "iii1"]), ("zi3", ["z", "ii3"]), ("ju4", ["j", "v4"]), ("yu2", ["^", "v2"]),
        ("lv4", ["l", "v4"]), ("lü4", ["l", "v4"]), ("wen2", ["^", "uen2"]), ("gui4", ["g", "uei4"]),
        ("liu2", ["l", "iou2"]), ("dun1", ["d", "uen1"]), ("xue2", ["x", "ve2"]), ("er2", ["^", "er2"]),
        ("a1", ["^", "a1"]), ("huar4", ["h", "ua4", "er5"]), ("n2", ["^", "en2"]),
    ],
)
def test_pinyin_to_biaobei_symbols(pinyin: str, symbols: list[str]) -> None:
    assert syllable_symbols(pinyin) == symbols


def test_every_pinyin_syllable_maps_into_the_voice_inventory() -> None:
    symbols_file = REPO / "models" / "zh_CN-baker" / "symbols.json"
    inventory = set(json.loads(symbols_file.read_text(encoding="utf-8"))["symbol_to_id"])
    from pypinyin import lazy_pinyin

    syllables = {
        p.rstrip("12345") for code in pinyin_dict.pinyin_dict for p in lazy_pinyin(chr(code), style=Style.NORMAL)
    }
    syllables = {s for s in syllables if s.isalpha() and s.isascii()} - {"hm", "hng", "m", "n", "ng", "ê"}
    unmapped = sorted(s for s in syllables if not set(syllable_symbols(s + "1")) <= inventory)
    assert not unmapped


def test_sentence_symbols_follow_the_training_layout() -> None:
    [sentence] = Frontend().sentences("你好，世界。")
    symbols = sentence_symbols(sentence.syllables, {"sil", "#0", "#1", "#2", "#3", "n", "i3", "i2", "h", "ao3", "sh", "iii4", "j", "ie4"})
    assert symbols[0] == "sil" and symbols[-1] == "sil"
    assert "#3" in symbols  # the comma is an intonational-phrase boundary
    assert not any(a.startswith("#") and b.startswith("#") for a, b in zip(symbols, symbols[1:]))
    assert split_pinyin("shi") == ("sh", "iii")


def test_long_first_sentence_splits_at_an_early_phrase_boundary() -> None:
    from wyoming_indextts.frontend.pipeline import split_head

    [sentence] = Frontend().sentences("今天晚上十点以后，请大家保持安静，不要大声喧哗，谢谢配合好吗？")
    head, tail = split_head(sentence)
    assert head.spans[0].text + "，" + tail.spans[0].text == sentence.normalized
    assert head.syllables[-1].boundary == 4 and not head.is_question
    assert tail.is_question  # the question contour stays at the real end
    assert len(head.syllables) + len(tail.syllables) == len(sentence.syllables)
    [short] = Frontend().sentences("你真的要去银行取钱吗？")
    assert split_head(short) == (short,)
