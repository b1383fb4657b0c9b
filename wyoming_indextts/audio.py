"""Plain audio data and the few conversions every door and engine shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PCM_WIDTH = 2  # bytes per sample: 16-bit signed little-endian
PCM_CHANNELS = 1


@dataclass(frozen=True)
class AudioChunk:
    """A piece of mono float32 audio in [-1, 1] at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def to_pcm16(self) -> bytes:
        return float_to_pcm16(self.samples)


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Convert float audio to 16-bit little-endian PCM, clipping instead of wrapping."""
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def pcm16_to_float(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling so a fallback voice can join a stream of another rate.

    Uses FFT-domain resampling per call: sentences are short (seconds), so the
    cost is small, and it avoids the aliasing of linear interpolation.
    """
    if from_rate == to_rate or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    n_out = int(round(len(samples) * to_rate / from_rate))
    spectrum = np.fft.rfft(samples.astype(np.float64))
    n_bins_out = n_out // 2 + 1
    if n_bins_out <= len(spectrum):
        spectrum = spectrum[:n_bins_out]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(n_bins_out - len(spectrum), dtype=spectrum.dtype)])
    out = np.fft.irfft(spectrum, n=n_out) * (n_out / len(samples))
    return out.astype(np.float32)


def silence(seconds: float, sample_rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)
