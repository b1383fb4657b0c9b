"""One-shot synthesis to a WAV file, through the same pipeline as the server.

    python -m wyoming_indextts.say --voice zh_CN-baker --output out.wav "你好"
    echo "你好" | python -m wyoming_indextts.say --output out.wav -
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from . import cli
from .__main__ import DEFAULT_VOICE, default_model_dirs
from .frontend import Frontend
from .synthesis import SynthesisError, SynthesisSettings, Synthesizer, VoiceRequest
from .voices import VoiceCatalog, discover_voices


async def _synthesize(args: argparse.Namespace, text: str, lexicon: dict[str, str] | None) -> tuple[np.ndarray, int]:
    discovery = discover_voices([*args.data_dir, *default_model_dirs()])
    # Every voice loads (about a second each): mixed text and fallbacks may need any of them.
    catalog = VoiceCatalog.load(discovery.voices, args.threads, args.voice, discovery.failures)
    synthesizer = Synthesizer(
        catalog,
        Frontend(lexicon=lexicon),
        SynthesisSettings(max_workers=1, sentence_silence=args.sentence_silence, fallback_voices=tuple(args.fallback_voice)),
    )
    try:
        voice = synthesizer.resolve_voice(VoiceRequest(name=args.voice, speaker=args.speaker))
        text = synthesizer.accept_text(text)
        pieces = [chunk.samples async for chunk in synthesizer.stream(text, voice, args.speed)]
    finally:
        synthesizer.close()
    return np.concatenate(pieces), voice.sample_rate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wyoming_indextts.say", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("text", help="text to speak, or - to read standard input (UTF-8)")
    parser.add_argument("--output", "-o", type=Path, required=True, help="WAV file to write")
    parser.add_argument("--voice", default=DEFAULT_VOICE, help="voice name, as the server lists it (default: %(default)s)")
    parser.add_argument("--speaker", help="speaker of a multi-speaker voice (name or number)")
    parser.add_argument("--speed", type=cli.speed, default=1.0, help="speaking rate from 0.25 to 4, >1 is faster (default: %(default)s)")
    parser.add_argument("--sentence-silence", type=cli.seconds, default=0.0, metavar="SECONDS", help="seconds of silence after each sentence")
    parser.add_argument("--fallback-voice", action="append", default=[], metavar="VOICE", help="voice to try when the requested one fails (repeatable, in order)")
    parser.add_argument("--data-dir", action="append", default=[], type=Path, metavar="DIR", help="extra folder with voices (repeatable)")
    parser.add_argument("--threads", type=cli.positive_int, default=1, help="ONNX Runtime threads per model (default: %(default)s)")
    parser.add_argument("--lexicon", type=Path, metavar="FILE", help="word → pinyin overrides, one 'word pin1 yin1' per line")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    # Checked before the voices load (seconds), so a typo in a path fails at once.
    folder = args.output.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK) or args.output.is_dir():
        parser.error(f"cannot write {args.output}: {'it is a folder' if args.output.is_dir() else 'no writable folder ' + str(folder)}")
    lexicon = cli.lexicon_or_exit(parser, args.lexicon)
    if args.text == "-":
        try:
            text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as err:
            parser.error(f"standard input is not UTF-8 text (byte {err.start}); convert it first, e.g. with iconv")
    else:
        text = args.text
    try:
        audio, rate = asyncio.run(_synthesize(args, text, lexicon))
    except SynthesisError as err:
        parser.error(cli.describe_error(err))
    try:
        sf.write(args.output, audio, rate, subtype="PCM_16")
    except (OSError, sf.LibsndfileError) as err:
        parser.error(f"cannot write {args.output}: {err}")


if __name__ == "__main__":
    main()
