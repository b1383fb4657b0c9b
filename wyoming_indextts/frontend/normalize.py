"""Chinese text normalization: write numbers, units, times and dates out as words.

Rules run in order, most specific first, on the whole text before it is split
by script, so that "15:30" is read as a time and not as a ratio.
"""

from __future__ import annotations

import re
from typing import Callable

_DIGITS = "零一二三四五六七八九"
_SMALL_UNITS = ["", "十", "百", "千"]
_BIG_UNITS = ["", "万", "亿", "万亿"]


def read_digits(digits: str, one: str = "一") -> str:
    """Digit by digit, as for years, phone numbers and codes."""
    return "".join(one if d == "1" else _DIGITS[int(d)] for d in digits if d.isdigit())


def _read_under_10000(n: int) -> str:
    out: list[str] = []
    zero = False
    for power in (3, 2, 1, 0):
        digit = (n // 10**power) % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(_DIGITS[digit] + _SMALL_UNITS[power])
    return "".join(out)


def read_integer(number: str | int) -> str:
    """Cardinal reading: 10 → 十, 105 → 一百零五, 20000 → 两万."""
    n = int(number)
    if n == 0:
        return "零"
    if n < 0:
        return "负" + read_integer(-n)
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    if len(groups) > len(_BIG_UNITS):
        return read_digits(str(number))
    out = ""
    need_zero = False
    for i in range(len(groups) - 1, -1, -1):
        group = groups[i]
        if group == 0:
            need_zero = bool(out)
            continue
        if out and (need_zero or group < 1000):
            out += "零"
        out += _read_under_10000(group) + _BIG_UNITS[i]
        need_zero = False
    if out.startswith("一十"):
        out = out[1:]
    # 两 rather than 二 as a leading multiplier of 百/千/万/亿.
    out = re.sub(r"^二(?=[千万亿])", "两", out)
    return out


def read_number(text: str) -> str:
    """A cardinal with optional sign and decimals: -3.25 → 负三点二五."""
    text = text.replace(",", "")
    sign = ""
    if text.startswith(("-", "−")):
        sign, text = "负", text[1:]
    elif text.startswith("+"):
        sign, text = "正", text[1:]
    whole, _, frac = text.partition(".")
    if not (whole + frac).strip("0"):
        sign = ""  # -0.0 (a sensor rounding toward zero) is just 零点零
    out = read_integer(whole or "0")
    if frac:
        out += "点" + read_digits(frac)
    return sign + out


# Words after which 2 is 两: measure words and the big units (两万, 两千). Not 月 (二月 is
# February; two months is 两个月) and not 号/楼/路 (ordinal: 二号, 二楼).
_MEASURE_WORDS = (
    "个只台件条次位天年周本张把项度盏扇部辆遍块种名小分秒点层户间米岁斤成公倍克升吨杯瓶碗双对份根颗"
    "粒套轮趟场声下步站家座栋棵头口节箱包袋桶片组千万亿元角毛室厅卫厘毫微瓦立平英夜晚"
)


# A measure word after a number makes it a count (步数 10523 步), not a code; 人 too, which takes 两
# only in some words and so is not above.
_COUNTED = frozenset(_MEASURE_WORDS) - frozenset("点分秒小") | {"人"}


def _liang(cardinal: str, following: str) -> str:
    """两 instead of 二 when the number 2 counts something: 两个, 两小时, 两点."""
    if cardinal == "二" and following and following[0] in _MEASURE_WORDS and not following.startswith("年级"):
        return "两"
    return cardinal


_NUM = r"[-−]?\d+(?:,\d{3})*(?:\.\d+)?"

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _date(m: re.Match[str]) -> str:
    year, month, day = m.group("y"), m.group("m"), m.group("d")
    return f"{read_digits(year)}年{read_integer(month)}月{read_integer(day)}日"


def _date_year_last(m: re.Match[str]) -> str:
    """11/24/2025 → 二零二五年十一月二十四日. Whichever number is over 12 is the day; when both could
    be months, a slash means the American month first and a dot the European day first."""
    a, b = int(m.group("a")), int(m.group("b"))
    month, day = (b, a) if a > 12 or (b <= 12 and m.group("sep") == ".") else (a, b)
    if month > 12 or day > 31:
        return m.group(0)
    return f"{read_digits(m.group('y'))}年{read_integer(month)}月{read_integer(day)}日"


def _month_day(m: re.Match[str]) -> str:
    """3/15 → 三月十五日, after the word that made it a date (group ``w``), if any."""
    return (m.groupdict().get("w") or "") + read_integer(m.group("m")) + "月" + read_integer(m.group("d")) + "日"


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m.group("h")), int(m.group("min"))
    second = int(m.group("s") or 0)
    out = ("两" if hour == 2 else read_integer(hour)) + "点"
    if minute:
        out += ("零" if minute < 10 else "") + read_integer(minute) + "分"
    if second:
        if not minute:
            out += "零分"
        out += ("零" if second < 10 else "") + read_integer(second) + "秒"
    return out


_DAY_PARTS = ("早上", "上午", "中午", "下午", "傍晚", "晚上", "夜里", "凌晨", "明早", "今早", "今晚", "明晚", "早", "晚")


def _fraction(m: re.Match[str]) -> str:
    """2/5 → 五分之二, 4.8/5 → 五分之四点八; over 100 it is a percentage: 20/100 → 百分之二十."""
    denominator = "百" if m.group("b") == "100" else read_integer(m.group("b"))
    return denominator + "分之" + read_number(m.group("a"))


def _twelve_hour(m: re.Match[str]) -> str:
    """2:00 PM → 下午两点; 晚上7pm → 晚上七点 (the part of the day is said once)."""
    clock = m.group("t") if ":" in m.group("t") else m.group("t") + ":00"
    said = m.string[max(0, m.start() - 2) : m.start()].rstrip().endswith(_DAY_PARTS)
    part = "" if said else "上午" if m.group("ap") in "Aa" else "下午"
    return part + _time(_TIME.fullmatch(clock))  # type: ignore[arg-type]


_UNITS: dict[str, str] = {
    "°C": "摄氏度", "℃": "摄氏度", "°F": "华氏度", "℉": "华氏度", "°": "度",
    "km/h": "公里每小时", "m/s": "米每秒", "kWh": "千瓦时", "kw": "千瓦", "kW": "千瓦",
    "Mbps": "兆比特每秒", "MB": "兆字节", "GB": "吉字节", "KB": "千字节", "dB": "分贝",
    "mm": "毫米", "cm": "厘米", "km": "公里", "m²": "平方米", "㎡": "平方米", "m³": "立方米",
    "kg": "千克", "mg": "毫克", "g": "克", "ml": "毫升", "mL": "毫升", "L": "升",
    "ms": "毫秒", "h": "小时", "min": "分钟", "s": "秒", "W": "瓦", "V": "伏", "A": "安",
    "Hz": "赫兹", "m": "米", "%": "",
    "MB/s": "兆字节每秒", "KB/s": "千字节每秒", "kbps": "千比特每秒", "Gbps": "吉比特每秒", "TB": "太字节",
    "mAh": "毫安时", "mA": "毫安", "kV": "千伏", "kPa": "千帕", "hPa": "百帕", "mmHg": "毫米汞柱",
    "μg/m³": "微克每立方米", "μg/m3": "微克每立方米", "ug/m³": "微克每立方米", "ug/m3": "微克每立方米",
    "mg/m³": "毫克每立方米", "mg/m3": "毫克每立方米", "lux": "勒克斯", "lx": "勒克斯",
    "kcal": "千卡", "rpm": "转每分钟", "r/min": "转每分钟", "r/s": "转每秒", "bpm": "次每分钟",
    # Home Assistant's own unit strings (homeassistant.const): µ is the micro sign U+00B5, not μ.
    "µg/m³": "微克每立方米", "µg/m3": "微克每立方米", "µg": "微克", "μg": "微克", "µs": "微秒", "μs": "微秒",
    "µS/cm": "微西门子每厘米", "μS/cm": "微西门子每厘米", "bit/s": "比特每秒", "kbit/s": "千比特每秒",
    "Mbit/s": "兆比特每秒", "Gbit/s": "吉比特每秒", "kB/s": "千字节每秒", "GB/s": "吉字节每秒", "MiB/s": "兆字节每秒",
    "kB": "千字节", "KiB": "千字节", "MiB": "兆字节", "GiB": "吉字节", "TiB": "太字节",
    "kHz": "千赫兹", "MHz": "兆赫兹", "GHz": "吉赫兹", "Wh": "瓦时", "MWh": "兆瓦时", "mV": "毫伏", "VA": "伏安",
    "dBm": "分贝毫瓦", "ppm": "PPM", "ppb": "PPB", "Pa": "帕", "mbar": "毫巴", "bar": "巴", "inHg": "英寸汞柱",
    "mph": "英里每小时", "mm/h": "毫米每小时", "L/min": "升每分钟", "L/h": "升每小时", "m³/h": "立方米每小时",
    "W/m²": "瓦每平方米", "W/m2": "瓦每平方米", "mg/dL": "毫克每分升", "mmol/L": "毫摩尔每升", "lm": "流明",
    "km²": "平方公里", "kWh/100km": "千瓦时每百公里", "L/100km": "升每百公里", "Wh/km": "瓦时每公里",
    "km/kWh": "公里每千瓦时", "mi": "英里", "ft": "英尺", "gal": "加仑", "lb": "磅", "oz": "盎司",
}
_UNIT_PATTERN = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
# Units written in Chinese: the spoken forms above and the measure words that make a rate with a
# slash (7.85元/升, 1,100转/分钟, 41微克/立方米).
_CHINESE_UNITS = sorted(
    {u for u in _UNITS.values() if u and not u.isascii() and "每" not in u} | set("元角分次个度米克升吨斤块秒天周月年人台件转户瓶包箱杯碗帕瓦伏安"),
    key=len, reverse=True,
)
_CHINESE_UNIT_PATTERN = "|".join(_CHINESE_UNITS)
# Every unit and measure word the rules write after a number, longest first (compounds such as
# 公里每小时 in their parts, joined by 每): the prosody step keeps them with their number.
SPOKEN_UNITS: tuple[str, ...] = tuple(sorted(
    {part for u in _UNITS.values() if u and not u.isascii() for part in u.split("每")}
    | set(_CHINESE_UNITS) | set(_MEASURE_WORDS) - set("小平立英厘毫微千万亿点公")
    | {"小时", "分钟", "号", "楼", "级", "岁", "倍", "码"} | set("匹档挡格圈首集页笔封段处幢期季款寸"),
    key=len, reverse=True,
))


def _percent(number: str) -> str:
    """-3.2 → 负百分之三点二 (the sign goes before 百分之)."""
    reading = read_number(number)
    return "负百分之" + reading[1:] if reading.startswith("负") else "百分之" + reading


def _below_zero(reading: str, unit: str) -> str:
    """Temperatures below zero are 零下, not 负: -3℃ → 零下三摄氏度."""
    return "零下" + reading[1:] if unit in ("°C", "℃") and reading.startswith("负") else reading


def _measure(m: re.Match[str]) -> str:
    number, unit = m.group("n"), m.group("u")
    if unit == "%":
        return _percent(number)
    reading = _below_zero(read_number(number), unit)
    return _liang(reading, _UNITS[unit]) + _UNITS[unit]


# Words before a floor number that make it a place (二层), not a count (两层).
_TO_A_PLACE = ("在", "到", "达", "于", "去", "往", "回", "上", "下")


def _plain_number(m: re.Match[str]) -> str:
    number = m.group(0)
    after = m.string[m.end() : m.end() + 1]
    digits = number.lstrip("-−+")
    # Templates put spaces around numbers (「已开启 2 小时」): what counts is the next word.
    following = m.string[m.end() : m.end() + 8].lstrip()[:2]
    # Long digit strings without separators are codes or phone numbers; so is any whole number
    # written with a leading zero (座位08F, 错误代码E03): nobody pads a quantity. But a number up to
    # nine digits that counts something is a quantity: 步数 10523 步, 共12000人.
    counted = len(digits) <= 9 and following[:1] in _COUNTED
    if "." not in digits and "," not in digits and (
        (len(digits) >= 5 and digits.startswith("1") and not counted) or (len(digits) >= 2 and digits.startswith("0"))
    ):
        return read_digits(digits, one="幺")
    if "." not in digits and "," not in digits and len(digits) > 12:
        return read_digits(digits)
    if after == "元" and "." in digits:
        # Prices: 1,299.00元 → 一千二百九十九元, 45.60元 → 四十五点六元 (as _money does for ¥).
        number = number.rstrip("0").rstrip(".")
    if m.start() and m.string[m.start() - 1].isascii() and m.string[m.start() - 1].isalpha():
        return read_number(number)  # part of a name, not a count: B2层 is 二, not 两
    if after == "层" and m.string[max(0, m.start() - 2) : m.start()].endswith(_TO_A_PLACE):
        return read_number(number)  # a floor, not a count: 电梯到达2层 is 二层, 有2层 is 两层
    return _liang(read_number(number), following)


# After these, a number of three or more digits is a string of digits (1 as 幺): phone and
# service numbers, and codes, rooms and accounts (验证码五八二三, 房间三零二).
_CALL_WORDS = (
    "拨打|致电|拨|电话|热线|号码|呼叫|打给|联系|报警|急救|客服|验证码|密码|编号|房间号|房号|房间|"
    "工号|学号|账号|尾号|单号|邮编|邮政编码|卡号|车牌号|航班号|车次|端口|型号|序列号|取件码|取餐码|提货码|"
    "配对码|识别码|校验码|门牌号|门牌|设备号|批次号|编码|火警|匪警|交警"
)
_CURRENCY = {"¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑"}
_CURRENCY_CODES = {"CNY": "元", "RMB": "元", "EUR": "欧元", "USD": "美元"}
_OPERATORS = {"+": "加", "-": "减", "−": "减", "×": "乘", "*": "乘", "÷": "除以", "/": "除以", "=": "等于"}


def _arithmetic(m: re.Match[str]) -> str:
    """3+5=8 → 三加五等于八, 3+5×2 → 三加五乘二; with - or / only when an equals sign (or 等于)
    makes it a sum, not a range, a date or a fraction.

    The pattern takes a whole chain of numbers and signs whether or not a sum follows, and this
    gives back what is not a sum unchanged: a pattern that needed the equals sign to match would
    rescan the chain from every number in it (quadratic on 「1-1-1-…」).
    """
    is_sum = m.group("eq") is not None or m.string.startswith("等于", m.end())
    # Without an equals sign only + × ÷ make it arithmetic: - and / are ranges, dates, fractions.
    if not is_sum and re.search(r"[-−/]", m.group(0)):
        return m.group(0)
    parts = re.split(r"([+\-−×*÷/=])", m.group(0).replace(" ", ""))
    return "".join(_OPERATORS.get(p, "") if i % 2 else read_number(p) for i, p in enumerate(parts))


def _range(m: re.Match[str]) -> str:
    """3-5天 → 三到五天, 2-3个 → 两到三个, 50%~60% → 百分之五十到百分之六十; a unit is read where
    it is written (20℃-26℃ twice, 20-26℃ once, after the second number)."""
    unit = m.group("u") or m.group("pu") or ""
    if unit == "%":
        return f"{_percent(m.group('a'))}到{_percent(m.group('b'))}"
    low, high = (_below_zero(read_number(m.group(k)), unit) for k in ("a", "b"))
    unit_reading = _UNITS.get(unit, "")
    following = unit_reading or m.string[m.end() : m.end() + 1]
    low_unit = unit_reading if m.group("pu") and m.group("u") else ""
    return f"{_liang(low, low_unit or following)}{low_unit}到{_liang(high, following)}{unit_reading}"


def _time_range(m: re.Match[str]) -> str:
    """18:00-20:00 → 十八点到二十点."""
    return _time(_TIME.fullmatch(m.group("t1"))) + "到" + _time(_TIME.fullmatch(m.group("t2")))  # type: ignore[arg-type]


def _dotted(m: re.Match[str]) -> str:
    """Numbers with two or more dots are versions (2.3.1 → 二点三点一); addresses went before."""
    return _version(m.group(0))


def _version(text: str) -> str:
    """2.3.1 → 二点三点一, 2025.11.1 → 二零二五点十一点一, 2025.03.1 → 二零二五点零三点一.

    A four-digit first part is a calendar year, said digit by digit; so is a part written with a
    leading zero or of three or more digits; the others are small numbers, said as such.
    """
    parts = text.split(".")
    return "点".join(
        read_digits(p) if (k == 0 and len(p) == 4) or len(p) > 2 or (len(p) > 1 and p.startswith("0")) else read_integer(p)
        for k, p in enumerate(parts)
    )


def _address(m: re.Match[str]) -> str:
    """IPv4 address, digit by digit, parts joined by 点; a port after it: 冒号 and its digits."""
    out = "点".join(read_digits(p) for p in m.group("ip").split("."))
    return out + ("冒号" + read_digits(m.group("port")) if m.group("port") else "")


def _hardware_address(m: re.Match[str]) -> str:
    """A4:C1:38:5F:2B:9E → A四、C幺、三八、五F、二B、九E: pair by pair, letters by name, digits as
    in codes; 、 keeps the pairs apart (a space would join the letters into one English word)."""
    pairs = re.split(r"[:-]", m.group(0))
    return "、".join("".join(c.upper() if c.isalpha() else read_digits(c, one="幺") for c in pair) for pair in pairs)


_VERSION_WORDS = re.compile(r"版本|固件|更新|升级|[Vv]ersion|[Rr]elease|[Uu]pdate")

# Words after which h:mm:ss is a length of time, not a clock time (已运行 1:30:00, 时长 1:15:00).
_DURATION_WORDS = ("运行", "工作", "耗时", "用时", "时长", "历时", "持续", "剩余", "还剩", "倒计时", "计时", "已开启",
                   "开了", "累计", "共计", "总计")


def _duration(hours: int, minutes: int, seconds: int) -> str:
    """一小时三十分钟, 四十五分十二秒, 两小时零五秒: minutes are 分钟 when nothing follows them."""
    out = _liang(read_integer(hours), "小") + "小时" if hours else ""
    if minutes:
        out += _liang(read_integer(minutes), "分") + ("分" if seconds else "分钟")
    if seconds:
        out += ("零" if hours and not minutes else "") + _liang(read_integer(seconds), "秒") + "秒"
    return out or "零秒"


def _clock_or_duration(m: re.Match[str]) -> str:
    """h:mm:ss is a duration when the words before say so, when 后 follows (0:21:00后), when the
    hour is 24 or more, or when it is a lone 0 (Python's timedelta, which Home Assistant templates
    print, writes 0:05:30; a clock writes 00:05:30); otherwise it is left for the clock rules."""
    hours = int(m.group("h"))
    before = re.split(r"[，,。；;！？!?：:]", m.string[max(0, m.start() - 8) : m.start()])[-1]
    after = m.string[m.end() : m.end() + 4].lstrip()
    if hours >= 24 or m.group("h") == "0" or after.startswith(("后", "之后", "以后")) or any(w in before for w in _DURATION_WORDS):
        return _duration(hours, int(m.group("min")), int(m.group("s")))
    return m.group(0)


def _days_and_time(m: re.Match[str]) -> str:
    """Python's timedelta with days: 3 days, 4:05:06 → 三天四小时五分六秒."""
    days = read_integer(m.group("d"))
    rest = (int(m.group("h")), int(m.group("min")), int(m.group("s")))
    return _liang(days, "天") + "天" + (_duration(*rest) if any(rest) else "")


def _utc_offset(m: re.Match[str]) -> str:
    """UTC+8 → UTC加八, UTC+05:30 → UTC加五小时三十分 (an offset asked for by name is said)."""
    sign = "加" if m.group("s") == "+" else "减"
    minutes = int(m.group("m") or 0)
    return sign + read_integer(m.group("h")) + (f"小时{read_integer(minutes)}分" if minutes else "")


def _money(m: re.Match[str]) -> str:
    """¥256.30 → 二百五十六点三元: trailing zeros of the cents are not said."""
    number = m.group("n")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    reading = read_number(number)
    per = "每" if m.group("per") else ""  # ￥0.56/度 → 零点五六元每度
    return _liang(reading, "元") + _CURRENCY[m.group("c")] + per


def _phone(m: re.Match[str]) -> str:
    code = m.group("cc")
    return ("加" + read_digits(code[1:]) if code else "") + read_digits(re.sub(r"\D", "", m.group("n")), one="幺")


def _digit_string(m: re.Match[str]) -> str:
    """Codes and room numbers are said digit by digit, 1 as 幺."""
    return read_digits(m.group(0), one="幺")


def _dashed_code(code: str) -> str:
    """Digit groups of a code joined by hyphens: each digit by digit, the hyphen 杠 (3-2-1508)."""
    return "杠".join(read_digits(group, one="幺") for group in re.split(r"[-‐]", code))


def _call_number(m: re.Match[str]) -> str:
    # Service and emergency numbers are said digit by digit, 1 as 幺: 幺幺零, 幺二零.
    return m.group("w") + read_digits(m.group("n"), one="幺")


# The same clock time with and without named groups (a range holds two of them).
_TIME_PATTERN = r"(?:[01]?\d|2[0-3]|24(?=:00)):[0-5]\d(?::[0-5]\d)?"
_TIME = re.compile(r"(?P<h>[01]?\d|2[0-3]|24(?=:00)):(?P<min>[0-5]\d)(?::(?P<s>[0-5]\d))?")

_RULES: list[_Rule] = [
    # Spaces a template puts around a value (「餐厅在 {{ 楼层 }} 层」 → 在 1 层) are not pauses in
    # Chinese: between a Chinese character and a number, and between a number and its measure word.
    # Kept, they cut the run the tones are decided on (一 in 在一层 and 一小时) and the rules that
    # look at the word before or after (101 室, 在 2 层).
    (re.compile(r"(?<=[\u4e00-\u9fff])[ \t]+(?=[-−+¥￥$€£]?\d)"), lambda m: ""),
    (re.compile(r"(?<=\d)[ \t]+(?=" + "|".join(SPOKEN_UNITS) + ")"), lambda m: ""),
    # Home Assistant's own strings first, before their digits are taken for anything else.
    # MAC-like hardware addresses: six pairs of hex digits.
    (re.compile(r"(?<![0-9A-Fa-f:-])[0-9A-Fa-f]{2}(?P<sep>[:-])(?:[0-9A-Fa-f]{2}(?P=sep)){4}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:-])"),
     _hardware_address),
    # ISO 8601 timestamps: fractional seconds and the UTC offset are not said (an offset is not
    # followed by another colon: 12:30:00-13:00:00 is a range). 09:00Z: the time as written.
    (re.compile(r"(?<=\d:[0-5]\d:[0-5]\d)(?:\.\d{1,9})?(?:Z|[+−-](?:0\d|1[0-4]):?[0-5]\d)(?![\d:])|(?<=\d:[0-5]\d:[0-5]\d)\.\d{1,9}(?![\d.:])|(?<=\d:[0-5]\d)Z(?![A-Za-z])"),
     lambda m: ""),
    (re.compile(r"(?<=UTC|GMT)\s*(?P<s>[+−-])(?P<h>1[0-4]|0?\d)(?::?(?P<m>[0-5]\d))?(?!\d)"), _utc_offset),
    # Durations: 3 days, 4:05:06 (Python's timedelta); h:mm:ss where the words say so.
    (re.compile(r"(?<![\d.])(?P<d>\d+)\s*days?,\s*(?P<h>\d{1,2}):(?P<min>[0-5]\d):(?P<s>[0-5]\d)(?![\d:])"), _days_and_time),
    (re.compile(r"(?<![\d:.])(?P<h>\d{1,3}):(?P<min>[0-5]\d):(?P<s>[0-5]\d)(?![\d:])"), _clock_or_duration),
    # IPv4 addresses (and a port): digit by digit.
    (re.compile(r"(?<![\d.])(?P<ip>(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3})(?::(?P<port>\d{1,5}))?(?!\d|\.\d)"),
     _address),
    # Versions, where the words say so: after 版本/固件/更新到 ... or v (固件版本v2.1.0, 版本1.1), before
    # 版 (2025.3版本), and after a product's name (Home Assistant 2025.3, Supervisor 2025.03.1) when
    # the first part is a year or there are two dots (HAOS 14.2 reads the same as a decimal).
    (re.compile(r"(?P<w>(?:版本号?|固件|更新到|更新至|升级到|升级至)[是为：:]?\s*|(?<![A-Za-z])[vV])(?P<v>\d+(?:\.\d+)+)(?!\d|\.\d)"),
     lambda m: m.group("w") + _version(m.group("v"))),
    (re.compile(r"(?<![\d.])(?P<v>\d+(?:\.\d+)+)(?=\s*版)"), lambda m: _version(m.group("v"))),
    # 2025.7.1 and 2025.7 are dates unless the sentence is about versions (有新版本可用：2025.7.1).
    (re.compile(r"(?<![\d.])(?:19|20)\d\d(?:\.\d{1,2}){1,2}(?!\d|\.\d)"),
     lambda m: _version(m.group(0)) if _VERSION_WORDS.search(m.string) else m.group(0)),
    (re.compile(r"(?<=[A-Za-z])(?P<s>\s+)(?P<v>(?:19|20)\d\d(?:\.\d+)+|\d+(?:\.\d+){2,})(?!\d|\.\d)"),
     lambda m: m.group("s") + _version(m.group("v"))),
    # Phone numbers in groups (+86 138 1234 5678, 400 820 8820, 400-820-8820, 010-62345678) are
    # digit strings, not ranges or sums; a country code is 加 and its digits.
    (re.compile(r"(?<![\d.])(?:(?P<cc>\+\d{1,3})[\s-]?)?(?P<n>\d{3,4}[-\s]\d{3,4}[-\s]\d{4}|0\d{2,3}-\d{7,8}|1\d{10})(?!\d)"),
     _phone),
    # A dash between a date or clock word and a number is a range: 5月1日-5月5日, 10点-11点.
    (re.compile(r"(?<=\d[年月日号点])\s*[-~～—]\s*(?=\d)"), lambda m: "到"),
    # Codes in dashed groups after a word that names them: 取件码3-2-1508 → 三杠二杠幺五零八
    # (two short groups are a range: 房间3-5人).
    (re.compile(rf"(?P<w>(?:{_CALL_WORDS})[是为：:]?\s*)(?P<n>\d+(?:-\d+){{2,}}|\d+-\d{{3,}}|\d{{3,}}-\d+)(?![\d.-])"),
     lambda m: m.group("w") + _dashed_code(m.group("n"))),
    (re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?:\s*[+\-−×*÷/]\s*\d+(?:\.\d+)?)+(?P<eq>\s*=\s*\d+(?:\.\d+)?)?"), _arithmetic),
    # Dimensions and resolutions: 1920×1080, 1920x1080 → 一千九百二十乘一千零八十; 7x24小时.
    (re.compile(r"(?<![\d.])(?P<a>\d+)\s*(?:[×*]|(?<=\d)[xX](?=\d))\s*(?P<b>\d+)(?![\d.])"), lambda m: read_integer(m.group("a")) + "乘" + read_integer(m.group("b"))),
    # ±0.1℃ → 正负零点一摄氏度.
    (re.compile(r"±\s*(?=\d)"), lambda m: "正负"),
    # Generations: 90后 → 九零后, 00后 → 零零后.
    (re.compile(r"(?<![\d.])(?P<n>[5-9]0|00|10)(?=后(?![面来天]))"), lambda m: read_digits(m.group("n"))),
    # A plus sign before a number in running text is not said: 高+3℃ → 高三摄氏度 (3+5 was a sum above).
    (re.compile(r"(?<![\d+])\+(?=\d)"), lambda m: ""),
    # Codes of letters then digits (G1234次, CA1234, RTX4090) and room numbers (2单元1203, 501室)
    # are digit strings.
    (re.compile(r"(?<=[A-Za-z])\d{3,}(?![\d.])"), _digit_string),
    # A hyphen in a code is not a minus: after letters it is not said (COVID-19 → COVID十九), between
    # the digit groups of a code it is 杠 (F1-02 → F一杠零二).
    (re.compile(r"(?<=[A-Za-z])[-‐](?=\d)"), lambda m: ""),
    (re.compile(r"(?<=[A-Za-z])\d+[-‐]\d+(?![\d.])"), lambda m: _dashed_code(m.group(0))),
    (re.compile(r"(?:(?<=单元)\d{3,4}|(?<!\d)\d{3,4}(?=室|房间))(?!\d)"), _digit_string),
    (re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?![\d.])"), _date),
    # ISO date-times: the T between date and time is not said.
    (re.compile(r"(?<=日)T(?=\d)"), lambda m: ""),
    # Day and month before the year: 11/24/2025 (month first), 24.11.2025 (day first).
    (re.compile(r"(?<![\d./])(?P<a>\d{1,2})(?P<sep>[/.])(?P<b>\d{1,2})(?P=sep)(?P<y>(?:19|20)\d\d)(?![\d.])"), _date_year_last),
    (re.compile(r"(?<![\d.])\d+(?:\.\d+){2,}(?![\d.])"), _dotted),
    # Year and month: 2025-03 → 二零二五年三月 (a zero-padded or two-digit month only: 2025-3 may be a range).
    (re.compile(r"(?<![\d.])(?P<y>(?:19|20)\d\d)[-/.](?P<m>0[1-9]|1[0-2])(?![\d.])"),
     lambda m: read_digits(m.group("y")) + "年" + read_integer(m.group("m")) + "月"),
    # Year ranges: 1998-2025年 → 一九九八到二零二五年, 2007/2008学年 → 二零零七到二零零八学年.
    (re.compile(r"(?<!\d)(?P<a>\d{4})\s*[-~～—至/]\s*(?P<b>\d{4})(?=年|赛季|学年|财年|届)"),
     lambda m: read_digits(m.group("a")) + "到" + read_digits(m.group("b"))),
    (re.compile(r"(?P<y>\d{4})(?P<s>\s*)年"), lambda m: read_digits(m.group("y")) + m.group("s") + "年"),
    # Other words that make four digits a year: 2025财年, 2024款, 2026届.
    (re.compile(r"(?<![\d.])(?P<y>(?:19|20)\d\d)(?=财年|学年|赛季|届|款)"), lambda m: read_digits(m.group("y"))),
    # Scores and ratios said with 比; where the context does not say so, a time needs two minute digits.
    (re.compile(r"(?P<w>比分|比例|比数|战绩|比)(?P<s>[是为：:]?\s*)(?P<a>\d+(?:\.\d+)?)[:：](?P<b>\d+(?:\.\d+)?)"),
     lambda m: m.group("w") + m.group("s") + read_number(m.group("a")) + "比" + read_number(m.group("b"))),
    (re.compile(rf"(?<!\d)(?P<t1>{_TIME_PATTERN})\s*[-~～—至到]\s*(?P<t2>{_TIME_PATTERN})(?!\d)"), _time_range),
    # 12-hour clock: 2:00 PM → 下午两点, 8am → 上午八点.
    (re.compile(r"(?<![\d:])(?P<t>(?:1[0-2]|0?[1-9])(?::[0-5]\d)?)\s*(?P<ap>[AaPp])\.?[Mm]\.?(?![A-Za-z\d])"), _twelve_hour),
    (re.compile(rf"(?<!\d){_TIME.pattern}(?!\d)"), _time),
    (re.compile(r"(?<![\d:.])(?P<a>\d+(?:\.\d+)?):(?P<b>\d+(?:\.\d+)?)(?![\d:])"),
     lambda m: read_number(m.group("a")) + "比" + read_number(m.group("b"))),
    # Blood pressure 120/80mmHg is said with 比.
    (re.compile(r"(?P<a>\d+)/(?P<b>\d+)\s*mmHg"),
     lambda m: read_integer(m.group("a")) + "比" + read_integer(m.group("b")) + "毫米汞柱"),
    # Month/day where the words around make it a date (请于3/15前, 从5/1起); otherwise a fraction.
    (re.compile(r"(?P<w>于|截至|截止|从|自|(?:今天|明天|昨天|后天|日期)[是为：:]?)(?P<m>1[0-2]|[1-9])/(?P<d>3[01]|[12]\d|[1-9])(?![\d/])"), _month_day),
    (re.compile(r"(?<![\d/])(?P<m>1[0-2]|[1-9])/(?P<d>3[01]|[12]\d|[1-9])(?=前|后|之前|之后|起|截止|到期)"), _month_day),
    (re.compile(r"(?<![\d.])(?P<a>\d+(?:\.\d+)?)/(?P<b>\d+)(?![\d/.])"), _fraction),
    # Running pace and arc minutes: 5'30" → 五分三十秒.
    (re.compile(r"(?<![\d.])(?P<a>\d+)['′](?P<b>[0-5]?\d)(?:[\"″]|'')"),
     lambda m: read_integer(m.group("a")) + "分" + read_integer(m.group("b")) + "秒"),
    # Video resolutions are said digit by digit: 1080P → 一零八零P.
    (re.compile(r"(?<![\d.])(?P<n>\d{3,4})(?P<p>[Pp])(?![A-Za-z])"), lambda m: read_digits(m.group("n")) + m.group("p")),
    (re.compile(rf"(?<![\d.A-Za-z])(?P<a>[-−]?\d+(?:\.\d+)?)(?P<pu>{_UNIT_PATTERN})?\s*[-~～—至到]\s*(?P<b>(?<=[~～—至到\s])[-−]?\d+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(?P<u>{_UNIT_PATTERN})?(?![A-Za-z\d])"),
     _range),
    (re.compile(r"(?P<c>[¥￥$€£])\s*(?P<n>\d+(?:,\d{3})*(?:\.\d+)?)(?P<per>\s*/\s*(?=[\u4e00-\u9fff]))?"), _money),
    (re.compile(rf"(?P<n>{_NUM})\s*(?P<u>{_UNIT_PATTERN})(?![A-Za-z])"), _measure),
    (re.compile(r"第(?P<n>\d+)"), lambda m: "第" + read_integer(m.group("n"))),
    # A price per unit with the currency after the number: 0.25 €/kWh, 0.56 CNY/kWh.
    (re.compile(rf"(?P<n>{_NUM})\s*(?P<c>[¥￥$€£]|CNY|RMB|EUR|USD)\s*/\s*(?P<per>{_UNIT_PATTERN})(?![A-Za-z])"),
     lambda m: read_number(m.group("n")) + _CURRENCY.get(m.group("c"), _CURRENCY_CODES.get(m.group("c"), "")) + "每" + _UNITS[m.group("per")]),
    # Zero-padded dates and hours, as strftime writes them (2025年06月01日 09时05分): the month,
    # day and hour are said without the zero, a minute or second with it (零五分).
    (re.compile(r"(?<![\d.])0(?P<n>\d)(?=[月日号时点])"), lambda m: read_integer(m.group("n"))),
    (re.compile(r"(?<![\d.])0(?P<n>\d)(?=[分秒])"), lambda m: "零" + read_integer(m.group("n"))),
    # Rates with a slash between Chinese units: 7.85元/升 → 七点八五元每升, 72次/分 → 七十二次每分.
    (re.compile(rf"(?P<n>{_NUM})\s*(?P<u>{_CHINESE_UNIT_PATTERN})\s*/\s*(?:(?P<per>{_UNIT_PATTERN})(?![A-Za-z])|(?=[\u4e00-\u9fff]))"),
     lambda m: _liang(read_number(m.group("n")), m.group("u")) + m.group("u") + "每" + _UNITS.get(m.group("per") or "", "")),
    # 100+个 → 一百多个.
    (re.compile(r"(?<![\d.])(?P<n>\d+)\+(?=[\u4e00-\u9fff])(?![零一二三四五六七八九十两百千万亿点])"),
     lambda m: read_integer(m.group("n")) + "多"),
    (re.compile(rf"(?P<w>(?:{_CALL_WORDS})[是为：:]?\s*)(?P<n>\d{{3,}})"), _call_number),
    (re.compile(_NUM), _plain_number),
    # A slash left over is never a symbol: between units it is 每 (元/度, 微克/立方米, 元/kWh), with
    # spaces around it a pause (23.5°C / 45%), before a number too; between words 或 (开/关);
    # anywhere else its name.
    # Without a number before it, only a unit of two or more characters or a currency (元/度) makes
    # it a rate: 点卡/月卡, 天/周 are words.
    (re.compile(rf"(?P<u>{'|'.join(u for u in _CHINESE_UNITS if len(u) > 1)}|元|角)\s*/\s*(?:(?P<per>{_UNIT_PATTERN})(?![A-Za-z])|(?={_CHINESE_UNIT_PATTERN}))"),
     lambda m: m.group("u") + "每" + _UNITS.get(m.group("per") or "", "")),
    (re.compile(r"\s+/\s+|/(?=[零一二两三四五六七八九十百负])"), lambda m: "，"),
    (re.compile(r"(?<=[\u4e00-\u9fff])/(?=[\u4e00-\u9fff])"), lambda m: "或"),
    (re.compile(r"/"), lambda m: "斜杠"),
]


_DEGREE_APART = re.compile(r"°\s+([CF])(?![A-Za-z])")

# Full-width digits, letters and number signs become ASCII; Chinese punctuation stays.
_HALF_WIDTH = {
    code: code - 0xFEE0
    for code in range(0xFF01, 0xFF5F)
    if chr(code - 0xFEE0).isalnum() or chr(code - 0xFEE0) in "%.+-/"
}


def normalize_zh(text: str) -> str:
    """Rewrite ``text`` so that every digit and unit symbol is spelled out in Chinese."""
    text = _DEGREE_APART.sub(r"°\1", text.translate(_HALF_WIDTH))
    if "/" not in text and not any(c.isdigit() for c in text):
        return text  # every rule needs a digit or a slash: most sentences have neither
    for pattern, reading in _RULES:
        text = pattern.sub(reading, text)
    return text
