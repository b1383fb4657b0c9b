"""Command-line rules shared by the server (``wyoming-indextts``) and ``say``.

The values a flag takes are checked by the same functions the Wyoming and HTTP doors use
(``synthesis.check_speed``, ``frontend.lexicon.load_lexicon``), so a bad value gets the same
message and code wherever it comes in; on the command line it ends in ``prog: error: …``
(exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .frontend.lexicon import LexiconError, load_lexicon
from .synthesis import SynthesisError, check_speed


def describe_error(err: SynthesisError | LexiconError) -> str:
    """A user-facing error as the command line prints it: the message, then its stable code."""
    return f"{err} ({err.code})"


def speed(value: str) -> float:
    """``type=`` for a speaking-rate flag."""
    try:
        number = float(value)
    except ValueError:
        number = value  # type: ignore[assignment]  # check_speed words the error
    try:
        return check_speed(number)
    except SynthesisError as err:
        raise argparse.ArgumentTypeError(describe_error(err)) from None


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def seconds(value: str) -> float:
    """``type=`` for a duration flag: zero or more seconds (0 usually means "off")."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not number >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {value}")
    return number


def lexicon_or_exit(parser: argparse.ArgumentParser, path: Path | None) -> dict[str, str] | None:
    """The user's pronunciation lexicon, or the parser's error exit with the reason."""
    if path is None:
        return None
    try:
        return load_lexicon(path)
    except LexiconError as err:
        parser.error(describe_error(err))
