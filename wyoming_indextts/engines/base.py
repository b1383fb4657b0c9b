"""The contract between the synthesis layer and every engine family."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..frontend import Sentence


@dataclass(frozen=True)
class Speaker:
    name: str
    id: int


@dataclass(frozen=True)
class VoiceInfo:
    """What a voice is, as its manifest declares it; loading it is the engine's job."""

    name: str
    engine: str
    languages: tuple[str, ...]
    sample_rate: int
    path: Path
    """The voice's folder (or model file for single-file formats)."""
    description: str = ""
    version: str = ""
    license: str = ""
    attribution_name: str = ""
    attribution_url: str = ""
    speakers: tuple[Speaker, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    """Engine-specific settings from the manifest."""

    def speaker_id(self, speaker: str | None) -> int:
        """Resolve a speaker by name or numeric id; None means the first speaker."""
        if speaker is None or not self.speakers:
            return self.speakers[0].id if self.speakers else 0
        for candidate in self.speakers:
            if candidate.name == speaker or str(candidate.id) == speaker:
                return candidate.id
        raise UnknownSpeakerError(f"Voice {self.name!r} has no speaker {speaker!r}")


@dataclass(frozen=True)
class SynthesisConfig:
    """Per-request controls every engine maps to its own knobs."""

    speed: float = 1.0
    """>1 is faster."""
    speaker: str | None = None


class UnknownSpeakerError(ValueError):
    pass


class EngineError(RuntimeError):
    """An engine could not turn a sentence into audio."""


class Cancelled(Exception):
    """The request was abandoned (client left); stop between steps."""


class Engine(Protocol):
    """A loaded voice. Thread-safe: several workers may call ``synthesize`` at once."""

    info: VoiceInfo

    @property
    def sample_rate(self) -> int: ...

    def synthesize(
        self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event
    ) -> Iterator[np.ndarray]:
        """Yield float32 mono audio for one sentence, in order, as soon as each piece is ready.

        Implementations check ``cancel`` between model runs and raise ``Cancelled``.
        """
        ...

    def warm_up(self) -> None:
        """Run once at start-up so the first request does not pay for lazy allocations."""
        ...


@dataclass(frozen=True)
class Window:
    """Frames [start, end) of a streamed decoder's output, computed from frames [left, right)."""

    start: int
    end: int
    left: int
    right: int


def windows(frames: int, context: int, first: int, later: int) -> Iterator[Window]:
    """How a convolutional decoder (a vocoder, VITS's HiFi-GAN) is run piece by piece so that
    audio leaves early: a small first window, then larger ones, each with ``context`` frames on
    either side, enough for the joined output to equal one run's. No tiny last window: it would
    pay a whole context for little audio."""
    start, size = 0, first
    while start < frames:
        end = min(frames, start + size)
        if frames - end < size // 2:
            end = frames
        yield Window(start, end, max(0, start - context), min(frames, end + context))
        start, size = end, later


def check_cancel(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled()
