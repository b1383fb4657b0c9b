#!/usr/bin/env python3
"""Prosodic-boundary accuracy and speed on Biaobei labels: the trained model and the rule baseline.

    python benchmarks/frontend_prosody.py [labels.txt] [--ids 8001-9000]

Two scorings, side by side. Exact level (how the project is judged, as PaddleSpeech reports
it): a predicted #k where the label is #k is a hit; where the label is another level or none, a
false alarm for k and, if the label was #j, a miss for j. Boundary >= k (more lenient): a #k
boundary implies every lower level, so "#1" scores boundaries of level >= 1 (a #2 or #3 in the
gold also counts as a #1), "#2" level >= 2, "#3" level >= 3. The sentence-final #4 is a rule and
is not scored. Text goes through the
runtime G2P first, so the word segmentation is the one the server uses; timing is per sentence for
``predict_boundaries`` alone (features + ONNX), after G2P.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from train_prosody import build_examples, parse_labels, prf  # noqa: E402

from wyoming_indextts.frontend.g2p_zh import G2PZh  # noqa: E402
from wyoming_indextts.frontend.prosody import ProsodyPredictor, rule_boundaries  # noqa: E402

DEFAULT_LABELS = REPO.parent / "shared/data/baker/prosody_labels_000001-009000.txt"


def evaluate(labels_path: Path | str = DEFAULT_LABELS, id_range: tuple[int, int] = (8001, 9000)) -> dict:
    """Scores of the model and the rules on utterances ``id_range`` (inclusive), plus ms/sentence."""
    low, high = id_range
    utterances = [u for u in parse_labels(Path(labels_path)) if low <= u[0] <= high]
    examples = build_examples(utterances, G2PZh())
    gold = [levels for *_, levels in examples]
    predictor = ProsodyPredictor()
    predictor(examples[0][1], examples[0][2])  # warm-up
    results: dict = {"utterances": len(examples), "id_range": id_range}
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
    args = parser.parse_args()
    low, high = (int(x) for x in args.ids.split("-"))
    print(report(evaluate(args.labels, (low, high))))


if __name__ == "__main__":
    main()
