#!/usr/bin/env python3
"""Prosodic-boundary accuracy and speed on Biaobei labels: the trained model and the rule baseline.

    python benchmarks/frontend_prosody.py [labels.txt] [--ids 8001-9000]
    python benchmarks/frontend_prosody.py --model DIR [--model DIR ...] [--tune-on 7501-8000]

Two scorings, side by side. Exact level (how the project is judged, as PaddleSpeech reports
it): a predicted #k where the label is #k is a hit; where the label is another level or none, a
false alarm for k and, if the label was #j, a miss for j. Boundary >= k (more lenient): a #k
boundary implies every lower level, so "#1" scores boundaries of level >= 1 (a #2 or #3 in the
gold also counts as a #1), "#2" level >= 2, "#3" level >= 3. The sentence-final #4 is a rule and
is not scored. Text goes through the
runtime G2P first, so the word segmentation is the one the server uses; timing is per sentence for
``predict_boundaries`` alone (features + ONNX), after G2P.

``--model DIR`` scores another boundary model (a ``tools/train_prosody.py --out DIR``), given
more than once the average of their probabilities (an ensemble); ``--tune-on`` picks the #1 and
#2 thresholds on another id range (validation) by mean exact-level F1 instead of taking the first
model's. These are for experiments: the runtime rules after the model are the same as served.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from train_prosody import build_examples, parse_labels, prf  # noqa: E402

from wyoming_indextts.frontend.g2p_zh import G2PZh  # noqa: E402
from wyoming_indextts.frontend.lexical import Analysis, default_analyzer  # noqa: E402
from wyoming_indextts.frontend.prosody import ProsodyPredictor, Reading, rule_boundaries  # noqa: E402

DEFAULT_LABELS = REPO.parent / "shared/data/baker/prosody_labels_000001-009000.txt"


class AveragedPredictor(ProsodyPredictor):
    """Several trained boundary models as one: their probabilities averaged, then decoded and
    post-processed by ProsodyPredictor.__call__ exactly as the served model is. It has no ONNX
    session of its own (the members have), so the parent's constructor is not run."""

    def __init__(self, model_dirs: Sequence[Path], thresholds: Sequence[float] | None = None) -> None:
        self.members = [ProsodyPredictor(d / "prosody.onnx", d / "prosody_vocab.json") for d in model_dirs]
        self.vocab = self.members[0].vocab
        self.thresholds = list(thresholds or self.members[0].thresholds)

    def probabilities(self, text: str, readings: Sequence[Reading], analysis: Analysis | None = None) -> np.ndarray:
        analysis = analysis if analysis is not None else default_analyzer()(text)
        return np.mean([m.probabilities(text, readings, analysis) for m in self.members], axis=0)


def examples_in(labels_path: Path | str, id_range: tuple[int, int]) -> list:
    low, high = id_range
    return build_examples([u for u in parse_labels(Path(labels_path)) if low <= u[0] <= high], G2PZh())


def tune_thresholds(predictor: ProsodyPredictor, examples: list) -> list[float]:
    """#1 and #2 thresholds (0.30-0.70) by mean exact-level F1 of #1-#3 on ``examples``; #3's kept."""
    gold = [levels for *_, levels in examples]
    analyzer = default_analyzer()
    cached = [predictor.probabilities(text, readings, analyzer(text)) for _, text, readings, _ in examples]
    grid = [round(0.3 + 0.05 * i, 2) for i in range(9)]
    original = predictor.thresholds
    best = (-1.0, original)
    for t1, t2 in itertools.product(grid, grid):
        predictor.thresholds = [t1, t2, original[2]]
        pred = [predictor.levels(text, readings, probs) for (_, text, readings, _), probs in zip(examples, cached)]
        scores = prf(pred, gold)
        best = max(best, (sum(scores[f"exact#{k}"]["F1"] for k in (1, 2, 3)) / 3, predictor.thresholds))
    predictor.thresholds = original
    return best[1]


def evaluate(labels_path: Path | str = DEFAULT_LABELS, id_range: tuple[int, int] = (8001, 9000),
             model_dirs: Sequence[Path] = (), tune_on: tuple[int, int] | None = None) -> dict:
    """Scores of the model and the rules on utterances ``id_range`` (inclusive), plus ms/sentence.
    ``model_dirs``: score these models (averaged) instead of the shipped one."""
    examples = examples_in(labels_path, id_range)
    gold = [levels for *_, levels in examples]
    predictor = AveragedPredictor(model_dirs) if model_dirs else ProsodyPredictor()
    if tune_on is not None:
        predictor.thresholds = tune_thresholds(predictor, examples_in(labels_path, tune_on))
    predictor(examples[0][1], examples[0][2])  # warm-up
    results: dict = {"utterances": len(examples), "id_range": id_range, "thresholds": predictor.thresholds}
    for name, predict in (("model", predictor), ("rules", rule_boundaries)):
        started = time.perf_counter()
        pred = [predict(text, readings) for _, text, readings, _ in examples]
        elapsed = time.perf_counter() - started
        results[name] = prf(pred, gold)
        results[name]["ms_per_sentence"] = 1000 * elapsed / max(1, len(examples))
    return results


def report(results: dict) -> str:
    low, high = results["id_range"]
    lines = [f"Prosodic boundaries, Biaobei {low:06d}-{high:06d} ({results['utterances']} utterances)",
             "boundary >= k (other, lenient)       | exact level (as judged)"]
    for name in ("model", "rules"):
        r = results[name]
        hier = "  ".join(f"#{k} P {r[f'#{k}']['P']:.3f} R {r[f'#{k}']['R']:.3f} F1 {r[f'#{k}']['F1']:.3f}" for k in (1, 2, 3))
        exact = "  ".join(f"#{k} {r[f'exact#{k}']['F1']:.3f}" for k in (1, 2, 3))
        lines.append(f"{name:6s} {hier} | F1 {exact} | {r['ms_per_sentence']:.3f} ms/sentence")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("labels", nargs="?", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--ids", default="8001-9000", help="inclusive utterance-id range, e.g. 9001-10000")
    parser.add_argument("--model", type=Path, action="append", default=[],
                        help="a tools/train_prosody.py --out directory; several are averaged")
    parser.add_argument("--tune-on", help="pick the #1/#2 thresholds on this id range, e.g. 7501-8000")
    args = parser.parse_args()

    def id_range(spec: str) -> tuple[int, int]:
        low, high = (int(x) for x in spec.split("-"))
        return low, high

    results = evaluate(args.labels, id_range(args.ids), args.model, id_range(args.tune_on) if args.tune_on else None)
    print(report(results))
    print("thresholds", results["thresholds"])


if __name__ == "__main__":
    main()
