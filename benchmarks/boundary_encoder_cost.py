#!/usr/bin/env python3
"""What a pretrained-transformer boundary model would cost per sentence, against the shipped one.

    pip install torch==2.13.0      # builds the graphs; not a runtime dependency
    python benchmarks/boundary_encoder_cost.py [--data ../shared/data] [--sentences 300]

Issue #19's anchor for exact-level #1 F1 (0.91) is PaddleSpeech's ERNIE-1.0 rhythm predictor,
a 12-layer, 768-wide BERT fine-tuned on CSMSC and AISHELL-3. No such weights ship in a package
from the index, so this cannot measure the accuracy such a model would give here; it measures
the other half of the question: whether its shape fits the front end's 3 ms per sentence at
all. Each shape is a BERT-style encoder (token embeddings, post-norm self-attention blocks, a
5-way classifier per character) with **random weights**: run time does not depend on the
values. Shapes: ERNIE 1.0 base (12 × 768, 12 heads, FFN 3072, vocab 18,000 — the anchor's),
and two of the small ERNIE 3.0 shapes, micro (4 × 384, FFN 1536) and nano (4 × 312, FFN 1248),
vocab 40,000; the baseline is the shipped ``prosody.onnx`` (two int8 BiLSTM layers) with the
features of the same sentences, timed in the same process. Every graph runs in a one-thread
session made by ``wyoming_indextts.onnx.create_session``, as the server runs its front-end
models; the encoders are timed as float32 and with int8 dynamic quantization (as the shipped
model is). One JSON object per model: median and 90th-percentile ms per sentence over
Biaobei 008001–009000 and CPP dev sentences (interleaved), plus the graph's size in MB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from frontend_time import timing_sentences  # noqa: E402

from wyoming_indextts.onnx import create_session  # noqa: E402

# (name, layers, width, heads, ffn, vocabulary)
SHAPES = [
    ("ernie-1.0-base", 12, 768, 12, 3072, 18000),
    ("ernie-3.0-micro", 4, 384, 12, 1536, 40000),
    ("ernie-3.0-nano", 4, 312, 12, 1248, 40000),
]


def sentences(data: Path, count: int) -> list[str]:
    """``count`` of the sentences ``frontend_time.py`` times, Biaobei and CPP alternately."""
    baker, cpp = timing_sentences(data)
    return [s for pair in zip(baker[: count // 2], cpp[: count // 2]) for s in pair]


def export_encoder(path: Path, layers: int, width: int, heads: int, ffn: int, vocab: int) -> None:
    import torch
    from torch import nn

    class Block(nn.Module):
        """One post-norm BERT block, written out so that the export keeps the length dynamic."""

        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(width, 3 * width)
            self.proj = nn.Linear(width, width)
            self.norm1 = nn.LayerNorm(width)
            self.ffn = nn.Sequential(nn.Linear(width, ffn), nn.GELU(), nn.Linear(ffn, width))
            self.norm2 = nn.LayerNorm(width)

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            q, k, v = (t.reshape(h.shape[0], -1, heads, width // heads).transpose(1, 2)
                       for t in self.qkv(h).chunk(3, dim=-1))
            attention = torch.softmax(q @ k.transpose(-1, -2) / (width // heads) ** 0.5, dim=-1) @ v
            h = self.norm1(h + self.proj(attention.transpose(1, 2).reshape(h.shape)))
            return self.norm2(h + self.ffn(h))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(vocab, width)
            self.positions = nn.Embedding(512, width)
            self.norm = nn.LayerNorm(width)
            self.blocks = nn.Sequential(*(Block() for _ in range(layers)))
            self.out = nn.Linear(width, 5)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            h = self.norm(self.tokens(ids) + self.positions.weight[: ids.shape[1]])
            return torch.softmax(self.out(self.blocks(h)), dim=-1)

    torch.manual_seed(0)
    model = Encoder().eval()
    example = torch.randint(0, vocab, (1, 24))
    torch.onnx.export(model, (example,), str(path), input_names=["ids"], output_names=["probs"],
                      dynamic_axes={"ids": {0: "batch", 1: "chars"}, "probs": {0: "batch", 1: "chars"}},
                      opset_version=17, dynamo=False)


def time_runs(run: Callable[[dict], object], inputs: list[dict], repeat: int = 3) -> dict[str, float]:
    """Median and 90th percentile ms of ``run`` over ``inputs``, ``repeat`` passes after a warm-up."""
    for item in inputs[:5]:
        run(item)
    times = []
    for _ in range(repeat):
        for item in inputs:
            started = time.perf_counter()
            run(item)
            times.append(1000 * (time.perf_counter() - started))
    times.sort()
    return {"median_ms": round(statistics.median(times), 3), "p90_ms": round(times[int(0.9 * len(times))], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--sentences", type=int, default=300, help="at most 2,000 (1,000 of each)")
    args = parser.parse_args()

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from wyoming_indextts.frontend.dictionaries import default_dictionaries
    from wyoming_indextts.frontend.g2p_zh import G2PZh
    from wyoming_indextts.frontend.lexical import default_analyzer, hidden_states
    from wyoming_indextts.frontend.prosody import MODEL_PATH, ProsodyPredictor, features

    texts = sentences(args.data, args.sentences)
    lengths = [len(t) for t in texts]
    print(json.dumps({"sentences": len(texts), "median_chars": statistics.median(lengths)}), flush=True)

    # Baseline: the shipped boundary model's ONNX run on the inputs it gets for these sentences
    # (the same two arrays ProsodyPredictor.probabilities builds).
    g2p, analyzer, vocab = G2PZh(), default_analyzer(), ProsodyPredictor().vocab
    phrases = default_dictionaries().phrases
    baseline = []
    for text in texts:
        analysis = analyzer(text)
        baseline.append({"features": features(text, g2p(text), vocab, phrases, analysis)[None],
                         "states": hidden_states(analysis, len(text))[None]})
    shipped = create_session(MODEL_PATH, threads=1)
    results = [{"model": "shipped prosody.onnx (2 × BiLSTM 128, int8)",
                "size_mb": round(MODEL_PATH.stat().st_size / 1e6, 1),
                **time_runs(lambda f: shipped.run(None, f), baseline)}]
    print(json.dumps(results[-1]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for name, layers, width, heads, ffn, vocab in SHAPES:
            float_path = Path(tmp) / f"{name}.onnx"
            export_encoder(float_path, layers, width, heads, ffn, vocab)
            int8_path = Path(tmp) / f"{name}-int8.onnx"
            quantize_dynamic(str(float_path), str(int8_path), op_types_to_quantize=["MatMul"],
                             weight_type=QuantType.QInt8, reduce_range=True)
            # [CLS] + characters + [SEP], as a BERT tokenizer gives a Chinese sentence.
            feeds = [{"ids": rng.integers(0, vocab, (1, n + 2), dtype=np.int64)} for n in lengths]
            for label, path in (("float32", float_path), ("int8", int8_path)):
                session = create_session(path, threads=1)
                results.append({"model": f"{name} ({layers} × {width}, {label})",
                                "size_mb": round(path.stat().st_size / 1e6, 1),
                                **time_runs(lambda f: session.run(None, f), feeds)})
                print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
