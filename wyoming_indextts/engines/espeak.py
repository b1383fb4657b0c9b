"""espeak-ng formant synthesis: the last-resort voice that cannot fail to load.

The library and its data come from the ``espeakng-loader`` wheel, so nothing has to be
installed on the host. We talk to it through ctypes in synchronous mode: ``espeak_Synth``
blocks and hands us samples through a callback. Chinese spans are spoken from our own
front end's pinyin with the ``cmn-latn-pinyin`` voice (the plain ``cmn`` voice guesses
readings from characters and reads badly); English spans are spoken as text.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..frontend import Sentence
from .base import EngineError, SynthesisConfig, VoiceInfo, check_cancel

_LOGGER = logging.getLogger(__name__)

ESPEAK_VOICE_NAME = "espeak-ng"

# espeak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE = 1
_PITCH = 3
_EE_OK = 0
_DEFAULT_RATE_WPM = 175
_MIN_RATE_WPM, _MAX_RATE_WPM = 80, 450

# int callback(short *wav, int numsamples, espeak_EVENT *events)
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

# Which espeak-ng voice speaks which of our span languages.
_LANGUAGE_VOICES: dict[str, str] = {"zh": "cmn-latn-pinyin", "en": "en-us"}


def espeak_voice_info() -> VoiceInfo:
    """The manifest the catalogue lists for espeak-ng; it needs no files of its own."""
    return VoiceInfo(
        name=ESPEAK_VOICE_NAME,
        engine="espeak",
        languages=("zh_CN", "zh", "cmn", "en_US", "en"),
        sample_rate=22050,
        path=Path(_package_dir()),
        description="espeak-ng formant synthesis (last-resort fallback; robotic but always available)",
        version="1.52",
        license="GPL-3.0-or-later",
        attribution_name="eSpeak NG",
        attribution_url="https://github.com/espeak-ng/espeak-ng",
    )


def _package_dir() -> str:
    try:
        import espeakng_loader

        return str(Path(espeakng_loader.__file__).parent)
    except ImportError:
        return ""


@dataclass
class _Collector:
    """Samples handed over by the callback during one ``espeak_Synth`` call."""

    pieces: list[np.ndarray]
    cancel: threading.Event | None = None


class EspeakEngine:
    """Thread-safe by a lock: libespeak-ng keeps global state, so one synthesis at a time."""

    def __init__(self, info: VoiceInfo) -> None:
        self.info = info
        try:
            import espeakng_loader
        except ImportError as err:
            raise EngineError("espeak-ng needs the espeakng-loader package") from err
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_SetParameter.restype = ctypes.c_int
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        self._lib.espeak_Synth.restype = ctypes.c_int
        self._lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        self._lib.espeak_SetSynthCallback.restype = None
        self._lock = threading.Lock()
        self._collector: _Collector | None = None
        # Kept on the instance: ctypes must not garbage-collect a callback the library still holds.
        self._callback = _SYNTH_CALLBACK(self._on_samples)
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate <= 0:
            raise EngineError(f"espeak_Initialize failed ({rate})")
        self._lib.espeak_SetSynthCallback(self._callback)
        self._rate = int(rate)
        if self._rate != info.sample_rate:
            # The listing must tell the truth about the stream format.
            self.info = replace(info, sample_rate=self._rate)

    @property
    def sample_rate(self) -> int:
        return self._rate

    def _on_samples(self, wav: ctypes._Pointer, count: int, _events: int) -> int:  # type: ignore[type-arg]
        collector = self._collector
        if collector is None:
            return 1
        if count > 0 and wav:
            samples = np.ctypeslib.as_array(wav, shape=(count,)).astype(np.float32) / 32768.0
            collector.pieces.append(samples)
        # Returning 1 tells espeak-ng to stop: the client has gone.
        return 1 if collector.cancel is not None and collector.cancel.is_set() else 0

    def speak(self, text: str, voice: str, speed: float = 1.0, cancel: threading.Event | None = None) -> np.ndarray:
        """Synthesize ``text`` with espeak-ng voice ``voice``; blocks, holds the engine's lock."""
        data = text.encode("utf-8") + b"\0"
        buffer = ctypes.create_string_buffer(data)
        rate = int(max(_MIN_RATE_WPM, min(_MAX_RATE_WPM, _DEFAULT_RATE_WPM * speed)))
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise EngineError(f"espeak-ng has no voice {voice!r}")
            self._lib.espeak_SetParameter(_RATE, rate, 0)
            self._collector = _Collector([], cancel)
            try:
                error = self._lib.espeak_Synth(buffer, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
                pieces = self._collector.pieces
            finally:
                self._collector = None
        if error != _EE_OK:
            raise EngineError(f"espeak_Synth failed ({error})")
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def synthesize(self, sentence: Sentence, config: SynthesisConfig, cancel: threading.Event) -> Iterator[np.ndarray]:
        for span in sentence.spans:
            check_cancel(cancel)
            if span.language == "zh":
                # Toned pinyin syllables, e.g. "ni3 hao3"; a phrase boundary becomes a comma pause.
                words = [s.pinyin + ("," if s.boundary >= 2 else "") for s in span.syllables]
                text = " ".join(words)
            else:
                text = span.text
            if not text.strip():
                continue
            audio = self.speak(text, _LANGUAGE_VOICES.get(span.language, "en-us"), config.speed, cancel)
            check_cancel(cancel)
            if len(audio):
                yield audio

    def warm_up(self) -> None:
        self.speak("hello", "en-us")
