"""Home Assistant's own text (issue 16): readings, the tone of 一 as a digit, and no prosodic
boundary inside numbers, units and codes, on our development set and category by category."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from conftest import REPO
from wyoming_indextts.frontend import prosody
from wyoming_indextts.frontend.g2p_zh import G2PZh
from wyoming_indextts.frontend.normalize import normalize_zh
from wyoming_indextts.frontend.pipeline import Frontend
from wyoming_indextts.frontend.prosody import digit_groups, keep_numbers_whole, number_spans
from wyoming_indextts.frontend.sentence import is_hanzi

sys.path.insert(0, str(REPO / "benchmarks"))
from frontend_ha import DEFAULT_TSV, evaluate, read_cases  # noqa: E402


@pytest.fixture(scope="module")
def frontend() -> Frontend:
    return Frontend()


SETS = [DEFAULT_TSV, DEFAULT_TSV.with_name("zh_home_assistant_blind.tsv")]


@pytest.mark.parametrize("tsv", SETS, ids=lambda path: path.stem)
def test_development_set_is_well_formed(tsv: Path) -> None:
    """Every check names a span of an accepted reading, with one syllable per Chinese character:
    a typo in a check would otherwise never fire (checks on absent spans do not apply)."""
    cases = read_cases(tsv)
    assert len(cases) >= (200 if tsv == DEFAULT_TSV else 60)
    for case in cases:
        readings = [re.sub(r"\s", "", r) for r in case.readings]
        for span in case.no_break:
            assert any(span.replace("/", "") in r for r in readings), (case.text, span)
        for span, syllables in case.pinyin:
            assert any(span in r for r in readings), (case.text, span)
            assert len(syllables) == sum(is_hanzi(c) for c in span), (case.text, span)


@pytest.mark.parametrize("tsv", SETS, ids=lambda path: path.stem)
def test_development_set(frontend: Frontend, tsv: Path) -> None:
    result = evaluate(tsv, frontend)
    failures = [(c.text, s.prosody, " ".join(s.pinyin), v.tones + v.boundaries) for c, s, v in result["failures"]]
    assert result["reading"] == 1.0, failures
    assert result["accuracy"] >= 0.98, failures


@pytest.mark.parametrize(
    ("text", "inside", "after"),
    [
        # the examples: no boundary inside the number or the unit; one may follow the number
        ("本月用电量为328.6千瓦时", "三百二十八点六千瓦时", {"六": 1}),  # #1 before 千瓦时: not heard as 六千
        ("本月电费1,280.50元", "一千二百八十点五元", {}),
        ("PM2.5浓度", "PM二点五", {}),
        ("PM10为150", "PM十", {}),
        # digit strings in the groups people read them in, with a boundary between groups
        ("手机13812345678", "幺三八幺二三四五六七八", {"八": 1, "四": 1}),
        ("客服电话400-820-8820", "四零零八二零八八二零", {"零零": 1, "二零": 1}),
    ],
)
def test_boundaries_in_numbers(frontend: Frontend, text: str, inside: str, after: dict[str, int]) -> None:
    sentence = frontend.analyze(text)
    start = sentence.normalized.index(inside)
    levels = {s.index: s.boundary for s in sentence.syllables}
    required = {start + inside.index(piece) + len(piece) - 1 for piece in after}
    for position in range(start, start + len(inside) - 1):
        if position in required:
            assert levels.get(position, 0) >= 1, sentence.prosody
        else:
            assert levels.get(position, 0) == 0, sentence.prosody


@pytest.mark.parametrize(
    ("text", "span", "pinyin"),
    [
        # 一 standing for the digit 1 keeps tone 1 ...
        ("电量1.5度", "一点五", ["yi1", "dian2", "wu3"]), ("版本1.1", "一点一", ["yi1", "dian3", "yi1"]),
        ("固件v2.1.0", "二点一点零", ["er4", "dian3", "yi1", "dian3", "ling2"]), ("地址192.168.1.1", "一九二", ["yi1", "jiu3", "er4"]),
        ("今天是6月1日", "一日", ["yi1", "ri4"]), ("住在1楼", "一楼", ["yi1", "lou2"]), ("湿度0.1%", "零点一", ["ling2", "dian3", "yi1"]),
        ("电费上涨了1.01元", "一点零一", ["yi1", "dian3", "ling2", "yi1"]),  # the tone corrector reads 了一点 as "a little"
        ("能效1级", "一级", ["yi1", "ji2"]), ("进度1/10", "十分之一", ["shi2", "fen1", "zhi1", "yi1"]),
        # ... the quantity 一 keeps its sandhi, and so do 七 and 八 their first tone
        ("已开启 1 小时", "一小时", ["yi4", "xiao3", "shi2"]), ("有1个包裹", "一个", ["yi2", "*"]),
        ("快一点", "一点", ["yi4", "dian3"]), ("七点八度", "七点八", ["qi1", "dian3", "ba1"]),
        # a revolution is zhuàn, not the zhuǎn of turning
        ("风扇转速 1200 rpm", "转每分钟", ["zhuan4", "mei3", "fen1", "zhong1"]),
        ("电机 30 r/s", "转每秒", ["zhuan4", "mei2", "miao3"]),
    ],
)
def test_tone_of_digits(frontend: Frontend, text: str, span: str, pinyin: list[str]) -> None:
    sentence = frontend.analyze(text)
    start = sentence.normalized.index(span)
    got = [s.pinyin for s in sentence.syllables if start <= s.index < start + len(span) and is_hanzi(s.char)]
    assert len(got) == len(pinyin) and all(w in ("*", g) for w, g in zip(pinyin, got)), (got, sentence.prosody)


@pytest.mark.parametrize(
    ("digits", "groups"),
    [
        ("幺三八幺二三四五六七八", [3, 4, 4]), ("四零零八二零八八二零", [3, 3, 4]), ("零幺零六二三四五六七八", [3, 4, 4]),
        ("零五七幺八八八八九九九九", [4, 4, 4]), ("九五五八八", [5]), ("五八二三九一", [3, 3]),
        ("二零二五零六零一一二三四五六", [4, 4, 4, 2]), ("幺二三四五六七八九", [4, 3, 2]),
    ],
)
def test_digit_groups(digits: str, groups: list[int]) -> None:
    assert digit_groups(digits) == groups


def test_country_code_is_a_group_of_its_own() -> None:
    assert digit_groups("八六幺三八幺二三四五六七八", after_plus=True) == [2, 3, 4, 4]


def test_constraint_holds_whatever_the_model_predicts() -> None:
    """The step runs after the model: a model (or a retrained one) that breaks everywhere still
    gets numbers, units and letter codes whole."""
    text = "PM二点五浓度三十五微克每立方米"
    readings = G2PZh()(text)
    levels = keep_numbers_whole(text, readings, [3] * len(readings))
    broken = {r.index for r, level in zip(readings, levels) if level}
    for start, end, cuts in number_spans(text):
        assert not (set(range(start, end - 1)) - set(cuts)) & broken, (text[start:end], levels)
    assert levels[[r.index for r in readings].index(text.index("度"))] == 3  # after 浓度: the model's call


@pytest.mark.parametrize(
    ("text", "number", "predicted", "kept"),
    [
        ("用时五十一分钟", "五十一", 2, 0),  # a number and its unit are one prosodic word
        ("风速十二米每秒", "十二", 1, 0),
        ("用电三百二十八点六千瓦时", "三百二十八点六", 0, 1),  # 八点六千 would be heard as a number
        ("气压一千零八百帕", "一千零八", 0, 1),  # 1008 hPa: 一千零八百 is no number, 百帕 the unit
    ],
)
def test_junction_of_number_and_unit(text: str, number: str, predicted: int, kept: int) -> None:
    """Whatever the model predicts between a number and its unit, the step decides."""
    readings = G2PZh()(text)
    levels = keep_numbers_whole(text, readings, [predicted] * len(readings))
    junction = [r.index for r in readings].index(text.index(number) + len(number) - 1)
    assert levels[junction] == kept, levels


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("今日步行 12876 步", "今日步行一万二千八百七十六步"),  # a count, though it starts with 1
        ("本月访客共15000人", "本月访客共一万五千人"),
        ("订单号10523已发货", "订单号幺零五二三已发货"),  # no measure word after it: a code
        ("邮编100080", "邮编幺零零零八零"),
        ("手机13812345678", "手机幺三八幺二三四五六七八"),
    ],
)
def test_long_numbers_that_count_are_quantities(text: str, reading: str) -> None:
    assert normalize_zh(text) == reading


def test_rules_fallback_keeps_numbers_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the model file the rules decide, and the same step applies."""
    monkeypatch.setattr(prosody, "default_predictor", lambda: None)
    sentence = Frontend().analyze("本月用电量为328.6千瓦时，PM2.5为35。")
    assert "三百二十八点六#1千瓦时" in sentence.prosody and "PM二点五" in sentence.prosody, sentence.prosody
