"""The Piper voice split into encoder and windowed decoder (first audio before the sentence is done)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import speech_like
from wyoming_indextts.engines.base import SynthesisConfig
from wyoming_indextts.engines.piper import FIRST_WINDOW_FRAMES, PiperEngine
from wyoming_indextts.frontend import Frontend
from wyoming_indextts.voices import discover_voices


@pytest.fixture(scope="module")
def joe() -> PiperEngine:
    [info] = [v for v in discover_voices([], espeak=False).voices if v.name == "en_US-joe-medium"]
    return PiperEngine(info, 1)


def test_the_packaged_english_voice_is_split(joe: PiperEngine) -> None:
    assert joe._encoder is not None and joe._decoder is not None


def test_windowed_decoding_matches_one_shot(joe: PiperEngine) -> None:
    latent = np.random.default_rng(3).standard_normal((1, 192, 180)).astype(np.float32)
    pieces = list(joe.decode_windows(latent))
    assert len(pieces) >= 2 and len(pieces[0]) == FIRST_WINDOW_FRAMES * 256
    # 16 frames of context exceed the decoder's measured reach of 11 frames: the same samples,
    # up to float reordering.
    np.testing.assert_allclose(np.concatenate(pieces), joe.decode(latent), atol=1e-4)


def test_sentence_streams_in_several_chunks_of_speech(joe: PiperEngine) -> None:
    [sentence] = Frontend().sentences("The garage door has been open for fifteen minutes.")
    chunks = list(joe.synthesize(sentence, SynthesisConfig(), threading.Event()))
    assert len(chunks) >= 2
    audio = np.concatenate(chunks)
    assert speech_like(audio, 22050) and 1.5 < len(audio) / 22050 < 6.0
    faster = np.concatenate(list(joe.synthesize(sentence, SynthesisConfig(speed=1.5), threading.Event())))
    assert len(faster) < len(audio) * 0.85
