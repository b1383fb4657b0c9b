"""English text normalization: only what espeak-ng (the English voices' phonemizer) misreads."""

from __future__ import annotations

import pytest

from wyoming_indextts.frontend import Frontend
from wyoming_indextts.frontend.normalize_en import normalize_en


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        # units, singular and plural, signs
        ("It is 23.5°C inside.", "It is 23.5 degrees Celsius inside."),
        ("It's -5°F outside.", "It's minus 5 degrees Fahrenheit outside."),
        ("1°C warmer", "1 degree Celsius warmer"),
        ("Usage 12.5 kWh, 1,500 W.", "Usage 12.5 kilowatt hours, 1,500 watts."),
        ("Speed 60 km/h.", "Speed 60 kilometers per hour."),
        ("PM2.5 is 35 µg/m³.", "PM2.5 is 35 micrograms per cubic meter."),
        ("Set a timer for 10 min.", "Set a timer for 10 minutes."),
        # money
        ("It costs $12.50.", "It costs 12 dollars 50 cents."),
        ("Only $1.", "Only 1 dollar."),
        ("It costs €5.", "It costs 5 euros."),
        ("A $2 million house.", "A 2 million dollars house."),
        # dates, clock times, ranges, phone numbers
        ("On 2025-04-05.", "On April 5th, 2025."),
        ("Due 4/22/2025.", "Due April 22nd, 2025."),
        ("It is 7:05 now.", "It is 7 oh 5 now."),
        ("Wake me at 7:00.", "Wake me at 7 o'clock."),
        ("Meet at 3:30 PM.", "Meet at 3 30 PM."),
        ("Delivery in 3-5 days.", "Delivery in 3 to 5 days."),
        ("20℃-26℃", "20 degrees Celsius to 26 degrees Celsius"),
        ("-5~-1℃", "minus 5 to minus 1 degrees Celsius"),
        ("Call 555-1234.", "Call 5 5 5, 1 2 3 4."),
        ("Call (555) 123-4567.", "Call 5 5 5, 1 2 3, 4 5 6 7."),
        # left alone: what espeak-ng reads well, and look-alikes that are not units
        ("The garage door has been open for 15 minutes.", "The garage door has been open for 15 minutes."),
        ("Battery at 80%.", "Battery at 80%."),
        ("Music from the 1990s.", "Music from the 1990s."),
        ("Room 302.", "Room 302."),
    ],
)
def test_reading(text: str, reading: str) -> None:
    assert normalize_en(text) == reading


def test_english_sentences_reach_the_voice_normalized() -> None:
    sentence = Frontend().sentences("The kitchen is 21°C.")[0]
    assert sentence.text == "The kitchen is 21°C."
    assert [(span.language, span.text) for span in sentence.spans] == [("en", "The kitchen is 21 degrees Celsius.")]
