"""English text normalization: what espeak-ng (the English voices' phonemizer) reads wrongly.

espeak-ng already says plain numbers, decimals, ordinals, percentages and "PM" well, so this
rewrites only what it gets wrong in home announcements: unit symbols ("12.5 kWh" would be
"kay double-u aitch"), money ("$12.50" would be "dollar twelve point five zero"), dates
("2025-04-05" would be read with "dash"), ranges ("3-5 days"), clock times with a zero
minute ("7:05" would be "seven zero five") and phone numbers. The output is still text with
digits, for espeak-ng to read.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")

# symbol → (singular, plural)
_UNITS: dict[str, tuple[str, str]] = {
    "°C": ("degree Celsius", "degrees Celsius"), "℃": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"), "℉": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "km/h": ("kilometer per hour", "kilometers per hour"), "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"), "m/s": ("meter per second", "meters per second"),
    "kWh": ("kilowatt hour", "kilowatt hours"), "Wh": ("watt hour", "watt hours"), "kW": ("kilowatt", "kilowatts"),
    "W": ("watt", "watts"), "kV": ("kilovolt", "kilovolts"), "V": ("volt", "volts"), "mAh": ("milliamp hour", "milliamp hours"),
    "mA": ("milliamp", "milliamps"), "A": ("amp", "amps"),
    "GHz": ("gigahertz", "gigahertz"), "MHz": ("megahertz", "megahertz"), "kHz": ("kilohertz", "kilohertz"),
    "Hz": ("hertz", "hertz"), "dB": ("decibel", "decibels"),
    "Gbps": ("gigabit per second", "gigabits per second"), "Mbps": ("megabit per second", "megabits per second"),
    "MB/s": ("megabyte per second", "megabytes per second"),
    "TB": ("terabyte", "terabytes"), "GB": ("gigabyte", "gigabytes"), "MB": ("megabyte", "megabytes"), "KB": ("kilobyte", "kilobytes"),
    "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"),
    "m²": ("square meter", "square meters"), "m³": ("cubic meter", "cubic meters"), "m": ("meter", "meters"),
    "ft": ("foot", "feet"), "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"),
    "lbs": ("pound", "pounds"), "lb": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"), "L": ("liter", "liters"),
    # No bare "s" or "g": "the 1990s", "5g".
    "ms": ("millisecond", "milliseconds"), "sec": ("second", "seconds"),
    "min": ("minute", "minutes"), "hrs": ("hour", "hours"), "hr": ("hour", "hours"), "h": ("hour", "hours"),
    "µg/m³": ("microgram per cubic meter", "micrograms per cubic meter"),
    "μg/m³": ("microgram per cubic meter", "micrograms per cubic meter"),
    "ug/m3": ("microgram per cubic meter", "micrograms per cubic meter"),
    "ppm": ("part per million", "parts per million"), "lux": ("lux", "lux"), "hPa": ("hectopascal", "hectopascals"),
}
_UNIT_PATTERN = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
             "£": ("pound", "pounds", "penny", "pence"), "¥": ("yuan", "yuan", "fen", "fen")}

_NUMBER = r"[-−]?\d+(?:,\d{3})*(?:\.\d+)?"


def _minus(number: str) -> str:
    """-3 → minus 3: the sign spelled out, as the unit and range rules both want it."""
    return "minus " + number[1:] if number.startswith("-") else number


def _unit(m: re.Match[str]) -> str:
    number = m.group("n").replace("−", "-")
    singular, plural = _UNITS[m.group("u")]
    word = singular if number.lstrip("+") in ("1", "1.0") else plural
    return f"{_minus(number)} {word}"


def _money(m: re.Match[str]) -> str:
    one, many, cent, cents = _CURRENCY[m.group("c")]
    if m.group("scale"):  # $2.5 million → 2.5 million dollars
        return f"{m.group('n')} {m.group('scale')} {many}"
    whole, _, frac = m.group("n").partition(".")
    amount = f"{whole} {one if whole == '1' else many}"
    if frac and int(frac[:2].ljust(2, "0")):
        hundredths = int(frac[:2].ljust(2, "0"))
        amount += f" {hundredths} {cent if hundredths == 1 else cents}"
    return amount


def _date(year: str, month: str, day: str) -> str:
    number = int(day)
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{_MONTHS[int(month) - 1]} {number}{suffix}, {year}"


def _valid_date(month: str, day: str) -> bool:
    return 1 <= int(month) <= 12 and 1 <= int(day) <= 31


def _date_match(m: re.Match[str]) -> str:
    """ISO (2025-04-05) and US (4/5/2025) dates alike, by their named groups."""
    y, mo, d = m.group("y"), m.group("m"), m.group("d")
    return _date(y, mo, d) if _valid_date(mo, d) else m.group(0)


def _clock(m: re.Match[str]) -> str:
    """7:05 → 7 oh 5, 7:00 → 7 o'clock, 0:30 → 12 30 (am/pm left as written)."""
    hour, minute = int(m.group("h")), int(m.group("min"))
    spoken_hour = 12 if hour == 0 else hour
    if minute == 0:
        return f"{spoken_hour} o'clock" if not m.group("ampm") else f"{spoken_hour}{m.group('ampm')}"
    tail = m.group("ampm") or ""
    return (f"{spoken_hour} oh {minute}" if minute < 10 else f"{spoken_hour} {minute}") + tail


def _range(m: re.Match[str]) -> str:
    return f"{_minus(m.group('a'))}{m.group('pu') or ''} to {m.group('b')}"


def _digits(m: re.Match[str]) -> str:
    """Phone numbers digit by digit, a pause between groups: 555-1234 → 5 5 5, 1 2 3 4."""
    groups = re.findall(r"\d+", m.group(0))
    return ", ".join(" ".join(group) for group in groups)


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

_RULES: list[_Rule] = [
    (re.compile(r"(?<![\d-])(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?![\d-])"), _date_match),
    (re.compile(r"(?<![\d/])(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})(?![\d/])"), _date_match),
    (re.compile(r"(?<![\d-])(?:\(\d{3}\)\s?|\d{3}-)?\d{3}-\d{4}(?![\d-])"), _digits),
    (re.compile(r"(?P<c>[$€£¥])\s?(?P<n>\d+(?:,\d{3})*(?:\.\d+)?)(?:\s?(?P<scale>thousand|million|billion))?"), _money),
    # Ranges: 3-5 days → 3 to 5 days, 20℃-26℃ and -5~-1℃ too (the unit rule below reads each unit).
    (re.compile(rf"(?<![\d.\-/:])(?P<a>-?\d+(?:\.\d+)?)(?P<pu>{_UNIT_PATTERN})?\s?[-–~]\s?"
                r"(?P<b>(?<=[–~\s])-?\d+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d/:])"),
     _range),
    (re.compile(rf"(?P<n>{_NUMBER})\s?(?P<u>{_UNIT_PATTERN})(?![A-Za-z0-9²³])"), _unit),
    (re.compile(r"(?<![\d:])(?P<h>[01]?\d|2[0-3]):(?P<min>[0-5]\d)(?P<ampm>\s?[AaPp]\.?[Mm]\.?)?(?![\d:])"), _clock),
]


def normalize_en(text: str) -> str:
    """Rewrite unit symbols, money, dates, ranges, clock times and phone numbers as espeak-ng should read them."""
    for pattern, reading in _RULES:
        text = pattern.sub(reading, text)
    return text


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))


def _cardinal(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10 - 2] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _cardinal(n % 100))
    for size, name in _SCALES:
        if n >= size:
            return _cardinal(n // size) + " " + name + ("" if n % size == 0 else " " + _cardinal(n % size))
    raise AssertionError(n)


def number_words(number: str) -> str:
    """``1,200.5`` → "one thousand two hundred point five", for voices that read English from a
    word lexicon rather than through espeak-ng (which reads digits itself)."""
    number = number.replace(",", "").replace("−", "-")
    sign = "minus " if number.startswith("-") else ""
    whole, _, fraction = number.lstrip("-+").partition(".")
    if not whole.isdigit() or len(whole) > 15:
        return " ".join(_ONES[int(d)] for d in number if d.isdigit())
    spoken = _cardinal(int(whole))
    if fraction.isdigit():
        spoken += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return sign + spoken

