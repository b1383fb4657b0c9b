"""One-shot synthesis to a WAV file, through the same pipeline as the server.

    python -m wyoming_indextts.say --voice zh_CN-baker --output out.wav "你好"
    echo "你好" | python -m wyoming_indextts.say --output out.wav -
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from .__main__ import DEFAULT_VOICE, default_model_dirs
from .frontend import Frontend
from .frontend.lexicon import load_lexicon
from .synthesis import SynthesisError, SynthesisSettings, Synthesizer, VoiceRequest
from .voices import VoiceCatalog, discover_voices


async def _synthesize(args: argparse.Namespace, text: str) -> None:
    discovery = discover_voices([*args.data_dir, *default_model_dirs()])
    # Every voice loads (about a second each): mixed text and fallbacks may need any of them.
    catalog = VoiceCatalog.load(discovery.voices, args.threads, args.voice, discovery.failures)
    synthesizer = Synthesizer(
        catalog,
        Frontend(lexicon=load_lexicon(args.lexicon) if args.lexicon else None),
        SynthesisSettings(max_workers=1, sentence_silence=args.sentence_silence, fallback_voices=tuple(args.fallback_voice)),
    )
    try:
        voice = synthesizer.resolve_voice(VoiceRequest(name=args.voice, speaker=args.speaker))
        pieces = [chunk.samples async for chunk in synthesizer.stream(text, voice, args.speed)]
    finally:
        synthesizer.close()
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    sf.write(args.output, audio, voice.sample_rate, subtype="PCM_16")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m wyoming_indextts.say", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", help="text to speak, or - to read standard input")
    parser.add_argument("--output", "-o", type=Path, required=True, help="WAV file to write")
    parser.add_argument("--voice", default=DEFAULT_VOICE, help="voice name, as the server lists it (default: %(default)s)")
    parser.add_argument("--speaker", help="speaker of a multi-speaker voice (name or number)")
    parser.add_argument("--speed", type=float, default=1.0, help="speaking rate, >1 is faster (default: %(default)s)")
    parser.add_argument("--sentence-silence", type=float, default=0.0, metavar="SECONDS", help="seconds of silence after each sentence")
    parser.add_argument("--fallback-voice", action="append", default=[], metavar="VOICE", help="voice to try when the requested one fails (repeatable, in order)")
    parser.add_argument("--data-dir", action="append", default=[], type=Path, metavar="DIR", help="extra folder with voices (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model (default: %(default)s)")
    parser.add_argument("--lexicon", type=Path, metavar="FILE", help="word → pinyin overrides, one 'word pin1 yin1' per line")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    text = sys.stdin.read() if args.text == "-" else args.text
    try:
        asyncio.run(_synthesize(args, text))
    except SynthesisError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
