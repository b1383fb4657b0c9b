"""Engine families: phonemes (or text) → waveform. One module per family."""

from __future__ import annotations

from collections.abc import Callable

from .base import Engine, EngineError, SynthesisConfig, VoiceInfo


def _load_fastspeech2(info: VoiceInfo, threads: int) -> Engine:
    from .fastspeech2 import FastSpeech2Engine

    return FastSpeech2Engine(info, threads)


def _load_piper(info: VoiceInfo, threads: int) -> Engine:
    from .piper import PiperEngine

    return PiperEngine(info, threads)


def _load_espeak(info: VoiceInfo, threads: int) -> Engine:
    from .espeak import EspeakEngine

    return EspeakEngine(info)


def _load_indextts(info: VoiceInfo, threads: int) -> Engine:
    from .indextts import open_voice  # IndexTTS-2.5 or IndexTTS-2, by the files in the folder

    return open_voice(info, threads)


def _load_matcha(info: VoiceInfo, threads: int) -> Engine:
    from .matcha import MatchaEngine

    return MatchaEngine(info, threads)


def _load_vits(info: VoiceInfo, threads: int) -> Engine:
    from .vits import VitsEngine

    return VitsEngine(info, threads)


def _load_kokoro(info: VoiceInfo, threads: int) -> Engine:
    from .kokoro import KokoroEngine

    return KokoroEngine(info, threads)


# Imports stay inside the loaders so a family whose runtime is missing only
# fails the voices that need it.
ENGINE_LOADERS: dict[str, Callable[[VoiceInfo, int], Engine]] = {
    "fastspeech2": _load_fastspeech2,
    "piper": _load_piper,
    "espeak": _load_espeak,
    "indextts": _load_indextts,
    # The model families of sherpa-onnx's releases (engines/sherpa_folder.py).
    "matcha": _load_matcha,
    "vits": _load_vits,
    "kokoro": _load_kokoro,
}


def load_engine(info: VoiceInfo, threads: int = 1) -> Engine:
    loader = ENGINE_LOADERS.get(info.engine)
    if loader is None:
        raise EngineError(f"Unknown engine family {info.engine!r} (known: {', '.join(sorted(ENGINE_LOADERS))})")
    return loader(info, threads)


__all__ = ["Engine", "EngineError", "SynthesisConfig", "VoiceInfo", "load_engine", "ENGINE_LOADERS"]
