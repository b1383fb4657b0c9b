"""Learn the spoken-tone data of the Chinese front end from the Biaobei (CSMSC) surface labels.

The shipped files learn from 000001–009000, all the labels we have (009001–010000 is the
judge's), so our own slice 008001–009000 is in-sample for them. Why: later and more data scored
better on 8001-9000 while it was held out: built from 1-7000, 1001-8000 and 1-8000, 2.59 %,
2.49 % and 2.45 % syllable error (docs/BENCHMARKS.md), through erhua units and neutral-tone
words. Not through 个, whose annotation drifts (ge5 309 : ge4 191 in 1-8000, ge4 55 : ge5 35 in
8001-9000): no build, not even 1-9000 scored in-sample, fixes its errors there. To rebuild
everything, in order (the part-of-speech table and the dictionary-first polyphones change the
readings the rest learn from, and the dictionary-first list is chosen with the table in place;
the tagger reads the neutral-tone list, so the list comes before it):

    L=../shared/data/baker/prosody_labels_000001-009000.txt
    python tools/train_polyphone.py pos $L ../shared/data/cpp --ids 1-9000
    python tools/train_polyphone.py dictionary-first $L --ids 1-9000 --cpp ../shared/data/cpp
    python tools/train_tones.py erhua $L --ids 1-9000
    python tools/train_polyphone.py neutral $L --ids 1-9000
    python tools/train_tones.py tagger $L --ids 1-9000 --epochs 12 --members 2

To measure a change blind, run the same five commands with ``--ids 1-8000`` (they overwrite the
shipped files: keep copies) and score 8001-9000 (``benchmarks/frontend_g2p.py``); to choose
settings, train on 1-7000 and watch our own slice: ``--ids 1-7000 --dev 7001-8000
--out /tmp/x.onnx`` (the dev inputs then use a list learned on 1-7000 only).

``erhua``: writes ``wyoming_indextts/data/erhua_words.txt``, for every unit ending in 儿 seen in
the labels (the word, or the word before a lone 儿 + 儿), whether the speaker merges 儿 into
the syllable before it. ``erhua --crossval 5`` writes nothing and reports how often the table,
and ``g2p_zh.guess_erhua`` for the units a fold's table lacks, are right on held-out folds.

``tagger``: trains the tone corrector (``wyoming_indextts/frontend/tone_model.py``; PyTorch,
one thread, about 2 minutes per member on one core) and writes ``wyoming_indextts/data/tone_model.onnx``:
``--members 2`` taggers from seeds 0 and 1, their logits averaged: a single tagger's errors vary
with its seed (on 7001-8000, trained on 1-7000: seeds 0, 1, 2 made 336, 357, 336 tone errors,
their average 335; 8 epochs instead of 12: 346, 367, 352, on an earlier build of the word
lists). Two, not three: with the lexical inputs below, the average of two and of three both made
1.72 % tone errors on 7001-8000, and blind (all five files from 1-8000) Baker 8001-9000 SER was
1.967 % against 1.937 % (337 against 332 syllables), while the third member's LSTM cost 0.1 ms
of the front end's 3 ms per CPP sentence. Per character it also reads the
lexical analyser's tag and place in its word (``Analysis.segmentation``): trained on 1-7000 with
every other file as shipped, tone errors on 7001-8000 were 1.73 / 1.84 / 1.75 % per seed and
1.72 % averaged, against 1.79 / 1.86 / 1.83 and 1.82 % with those inputs zeroed; blind (all
five files from 1-8000), Baker 8001-9000 SER 2.054 % against 2.077 %. Its inputs include the
rules' tones and the neutral-tone list's tones, and that list is learned from
the same utterances; so that the tagger does not learn to trust a list that has seen the answer,
the training inputs are made with lists learned on the *other* folds (cross-fitting), as the
run-time list is on unseen text.

Training-only tooling: nothing here is imported at run time.
"""

from __future__ import annotations

import argparse
import collections
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from train_polyphone import baker_utterances, onnx_lstm_weights, runs_of  # noqa: E402
from wyoming_indextts.frontend import tone_sandhi  # noqa: E402
from wyoming_indextts.frontend.g2p_zh import G2PZh, erhua_key, guess_erhua, run_segmentation, word_ends_at  # noqa: E402
from wyoming_indextts.frontend.lexical import TAGS  # noqa: E402
from wyoming_indextts.frontend.sentence import is_hanzi  # noqa: E402
from wyoming_indextts.frontend.tone_model import INPUTS, LEXICAL_PLACES, TONES, encode  # noqa: E402

DATA = REPO / "wyoming_indextts" / "data"
ERHUA_OUT = DATA / "erhua_words.txt"
_ERHUA_SYLLABLE = re.compile(r"[a-z]+r[1-5]")


def align(hanzi: str, syllables: list[str]) -> list[tuple[int, int]] | None:
    """(character index, syllable index) pairs; a merged 儿 maps to the erhua syllable too.

    None where the labels cannot be aligned (a count that erhua does not explain).
    """
    pairs: list[tuple[int, int]] = []
    j = 0
    i = 0
    while i < len(hanzi):
        if j >= len(syllables):
            return None
        s = syllables[j]
        if (i + 1 < len(hanzi) and hanzi[i + 1] == "儿" and _ERHUA_SYLLABLE.fullmatch(s)
                and not s.startswith("er")):
            pairs += [(i, j), (i + 1, j)]
            i += 2
        else:
            pairs.append((i, j))
            i += 1
        j += 1
    return pairs if j == len(syllables) else None


def runs(g2p: G2PZh, text: str) -> Iterator[list]:
    """Unpunctuated runs of Chinese words (``_Word``), as ``G2PZh`` groups them for sandhi."""
    return runs_of(g2p._words(text))


@dataclass(frozen=True)
class ErhuaUnit:
    """One 儿 closing a unit: the run's word texts, the word's place, and what the speaker did."""

    texts: list[str]
    w: int
    key: str
    merged: bool
    closes_word: bool  # the lexical analyser ends a word at this 儿


def erhua_units(labels: Path, ids: tuple[int, int]) -> Iterator[ErhuaUnit]:
    """Every 儿 in utterances ``ids`` that could merge (see ``erhua_key``), as the labels read it."""
    g2p = G2PZh()
    for text, syllables in baker_utterances(labels, ids):
        if "儿" not in text:
            continue
        hanzi_index = {i: n for n, i in enumerate(i for i, c in enumerate(text) if is_hanzi(c))}
        pairs = align("".join(c for c in text if is_hanzi(c)), syllables)
        if pairs is None:
            continue
        syllable_of = dict(pairs)
        analysis = g2p.lexical(text)
        for run in runs(g2p, text):
            texts = [w.text for w in run]
            for w, word in enumerate(run):
                for k, char in enumerate(word.text):
                    if char != "儿" or word.start + k not in hanzi_index:
                        continue
                    key = erhua_key(texts, w, k)
                    n = hanzi_index[word.start + k]
                    if key is None or n == 0:
                        continue
                    yield ErhuaUnit(texts, w, key, syllable_of[n] == syllable_of[n - 1],
                                    word_ends_at(analysis, word.start + k))


def erhua_votes(units: list[ErhuaUnit]) -> dict[str, collections.Counter]:
    """Per erhua key, how often the speaker merged 儿 (True) or said it (False)."""
    votes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for unit in units:
        votes[unit.key][unit.merged] += 1
    return votes


def crossval_erhua(labels: Path, ids: tuple[int, int], folds: int) -> None:
    """How often the learned table, and ``guess_erhua`` for keys it lacks, get a held-out
    fold's 儿 right (a wrong one makes the whole utterance a syllable short or long)."""
    low, high = ids
    size = (high - low + folds) // folds
    parts = [list(erhua_units(labels, (start, min(high, start + size - 1)))) for start in range(low, high + 1, size)]
    seen_wrong = seen = unseen_wrong = unseen = 0
    for f, test in enumerate(parts):
        votes = erhua_votes([u for g, part in enumerate(parts) if g != f for u in part])
        for unit in test:
            if unit.key in votes:
                seen += 1
                seen_wrong += (votes[unit.key][True] > votes[unit.key][False]) != unit.merged
            else:
                unseen += 1
                unseen_wrong += guess_erhua(unit.texts, unit.w, unit.closes_word) != unit.merged
    print(f"{folds}-fold: table wrong {seen_wrong} of {seen}, guess (unseen keys) wrong {unseen_wrong} of {unseen}")


def learn_erhua(labels: Path, ids: tuple[int, int], out: Path = ERHUA_OUT) -> None:
    votes = erhua_votes(list(erhua_units(labels, ids)))
    with out.open("w", encoding="utf-8") as f:
        f.write(f"# unit ending in 儿<TAB>1 = erhua (merged), 0 = 儿 said; majority of Biaobei {ids[0]:06d}-{ids[1]:06d}\n")
        f.write("# by tools/train_tones.py erhua\n")
        for key in sorted(votes):
            f.write(f"{key}\t{int(votes[key][True] > votes[key][False])}\n")
    print(f"wrote {out}: {len(votes)} units")


# --- tone corrector -------------------------------------------------------------------------

TAGGER_OUT = DATA / "tone_model.onnx"


@dataclass
class Example:
    """One unpunctuated run: what the tagger reads, and the tone to predict per character (-1 = none)."""

    words: list[str]
    citation: list[list[str]]
    spoken: list[list[str]]
    listed: list[str]
    lexical: list[tuple[int, int]]
    target: list[int]


def examples(labels: Path, ids: tuple[int, int], table: dict[str, str]) -> list[Example]:
    """Runs of utterances ``ids`` with the rules' tones computed with neutral word list ``table``.

    The target is the label's tone where the label's syllable is ours (a wrong polyphone is
    not the tagger's to fix); a merged 儿 has none (its tone is the syllable before it).
    """
    g2p = G2PZh(correct_tones=False)
    original = tone_sandhi.neutral_words
    tone_sandhi.neutral_words = lambda: table
    out: list[Example] = []
    try:
        for text, syllables in baker_utterances(labels, ids):
            hanzi = [i for i, c in enumerate(text) if is_hanzi(c)]
            pairs = align("".join(text[i] for i in hanzi), syllables)
            if pairs is None:
                continue
            label_of = {hanzi[n]: syllables[j] for n, j in pairs}
            merged = {hanzi[n] for n, j in pairs if n and pairs[n - 1][1] == j}
            words = g2p._words(text)
            analysis = g2p.lexical(text)
            g2p._disambiguate(text, words, analysis)
            for run in runs_of(words):
                texts = [w.text for w in run]
                citation = [list(w.pinyin) for w in run]
                spoken = tone_sandhi.apply(texts, citation, [w.locked for w in run], word_list=False)
                listed = tone_sandhi.listed(texts)
                target = []
                for word, surface in zip(run, spoken):
                    for k, ours in enumerate(surface):
                        position = word.start + k
                        label = label_of.get(position, "").replace("u:", "v")
                        base = label[:-1]
                        if base.endswith("r") and position + 1 in merged:
                            base = base[:-1]
                        ok = label and position not in merged and base == ours[:-1] and label[-1] in TONES
                        target.append(TONES.index(label[-1]) if ok else -1)
                out.append(Example(texts, citation, spoken, listed, run_segmentation(run, analysis), target))
    finally:
        tone_sandhi.neutral_words = original
    return out


def cross_fitted(labels: Path, ids: tuple[int, int], folds: int = 5) -> list[Example]:
    """Examples of ``ids`` whose neutral word list never saw them (learned on the other folds)."""
    sys.path.insert(0, str(REPO / "tools"))
    from train_polyphone import neutral_table

    low, high = ids
    size = (high - low + 1 + folds - 1) // folds
    out: list[Example] = []
    for f in range(folds):
        start, end = low + f * size, min(high, low + (f + 1) * size - 1)
        others = [r for r in ((low, start - 1), (end + 1, high)) if r[0] <= r[1]]
        table = neutral_table(labels, others)
        out += examples(labels, (start, end), table)
        print(f"fold {start}-{end}: list of {len(table)} words from {others}", flush=True)
    return out


EMBEDDINGS = ("emb_char", "emb_citation", "emb_rule", "emb_place", "emb_listed", "emb_lexical")


def tagger_graph(states: list[dict], threshold: float, chars: str):
    """Several trained taggers (PyTorch state dicts of ``Net``) as one ONNX graph for
    ``tone_model.ToneModel`` whose output is the softmax of their averaged logits.

    Inputs: the id sequences of ``tone_model.encode`` (``tone_model.INPUTS``), padded to
    ``[runs, steps]`` (int64), and each run's length (``lengths``, int32). Output
    ``probabilities``: ``[runs, steps, 5]``. Each table holds the members' embeddings side by side
    (float16: most of the file); each member is its own bidirectional LSTM node reading its own
    columns of them, and ``lengths`` makes the backward direction start at each run's own end.
    The characters and the confidence threshold travel in the model's metadata.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = len(states)
    hidden = states[0]["lstm.weight_hh_l0"].shape[1]
    widths = [states[0][f"{name}.weight"].shape[1] for name in EMBEDDINGS]
    # Column where member m's slice of table t starts in the concatenated embeddings.
    starts = np.cumsum([0] + [w * k for w in widths])
    nodes, initializers = [], []
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["runs", "steps"]) for name in INPUTS]
    inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, ["runs"]))

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value, name))
        return name

    gathered = []
    for table, ids in zip(EMBEDDINGS, INPUTS):
        side_by_side = np.concatenate([s[f"{table}.weight"] for s in states], axis=1).astype(np.float16)
        nodes.append(helper.make_node("Gather", [constant(table, side_by_side), ids], [f"{table}_rows"]))
        gathered.append(f"{table}_rows")
    nodes.append(helper.make_node("Concat", gathered, ["embedded16"], axis=2))
    nodes.append(helper.make_node("Cast", ["embedded16"], ["embedded"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Transpose", ["embedded"], ["steps_first"], perm=[1, 0, 2]))
    features = []
    for m, state in enumerate(states):
        columns = np.concatenate([np.arange(starts[t] + m * w, starts[t] + (m + 1) * w) for t, w in enumerate(widths)])
        weights, recurrent, biases = onnx_lstm_weights([
            tuple(state[f"lstm.{name}_l0{d}"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for d in ("", "_reverse")])
        nodes.append(helper.make_node("Gather", ["steps_first", constant(f"columns_{m}", columns.astype(np.int64))],
                                      [f"input_{m}"], axis=2))
        nodes.append(helper.make_node(
            "LSTM",
            [f"input_{m}", constant(f"W_{m}", weights), constant(f"R_{m}", recurrent), constant(f"B_{m}", biases), "lengths"],
            [f"states_{m}"], hidden_size=hidden, direction="bidirectional"))
        # [steps, 2, runs, hidden] → [steps, runs, 2 · hidden], forward units first, as PyTorch's.
        nodes.append(helper.make_node("Transpose", [f"states_{m}"], [f"paired_{m}"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"paired_{m}", constant(f"shape_{m}", np.array([0, 0, 2 * hidden]))],
                                      [f"features_{m}"]))
        features.append(f"features_{m}")
    nodes.append(helper.make_node("Concat", features, ["features"], axis=2))
    # The mean of the members' logits: their output layers side by side, each weighted 1/k.
    out_w = np.concatenate([s["out.weight"] for s in states], axis=1).T / k
    out_b = np.mean([s["out.bias"] for s in states], axis=0)
    nodes.append(helper.make_node("MatMul", ["features", constant("out_w", out_w.astype(np.float32))], ["projected"]))
    nodes.append(helper.make_node("Add", ["projected", constant("out_b", out_b.astype(np.float32))], ["logits"]))
    nodes.append(helper.make_node("Softmax", ["logits"], ["tone_probabilities"], axis=-1))
    nodes.append(helper.make_node("Transpose", ["tone_probabilities"], ["probabilities"], perm=[1, 0, 2]))
    graph = helper.make_graph(nodes, "tone_corrector", inputs,
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["runs", "steps", 5])],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tools/train_tones.py")
    model.ir_version = 8  # readable by onnxruntime 1.17, the oldest we allow
    onnx.helper.set_model_props(model, {"chars": chars, "threshold": repr(float(threshold))})
    onnx.checker.check_model(model)
    return model


def write_tagger(states: list[dict], threshold: float, chars: str, out: Path) -> None:
    import onnx

    onnx.save(tagger_graph(states, threshold, chars), str(out))


def train_tagger(labels: Path, ids: tuple[int, int], dev: tuple[int, int] | None, epochs: int,
                 threshold: float, out: Path = TAGGER_OUT, seed: int = 0, hidden: int = 64,
                 char_dim: int = 48, members: int = 1) -> None:
    """Train ``members`` taggers (seeds ``seed``, ``seed + 1`` ...) on ``ids`` (cross-fitted
    inputs) and write them as one model averaging their logits (:func:`tagger_graph`). Reports tone
    accuracy on ``dev`` (inputs from the list learned on all of ``ids``, as at run time) after
    each epoch, and of the average after each member."""
    import random

    import numpy as np
    import torch
    from torch import nn

    sys.path.insert(0, str(REPO / "tools"))
    from train_polyphone import neutral_table

    torch.set_num_threads(1)
    train = cross_fitted(labels, ids)
    dev_examples = examples(labels, dev, neutral_table(labels, [ids])) if dev else []
    counts = collections.Counter(c for e in train for c in "".join(e.words))
    chars = "".join(sorted(c for c, n in counts.items() if n >= 2))
    char_ids = {c: i + 1 for i, c in enumerate(chars)}

    def tensors(batch: list[Example]):
        encoded = [encode(e.words, e.citation, e.spoken, e.listed, e.lexical, char_ids) for e in batch]
        length = max(len(x.chars) for x in encoded)
        arrays = np.zeros((7, len(batch), length), dtype=np.int64)
        arrays[6] = -1
        for b, (x, e) in enumerate(zip(encoded, batch)):
            n = len(x.chars)
            for row, values in enumerate((x.chars, x.citation, x.rule, x.place, x.listed, x.lexical, e.target)):
                arrays[row, b, :n] = values
        lengths = torch.tensor([len(x.chars) for x in encoded])
        return [torch.from_numpy(a) for a in arrays], lengths

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb_char = nn.Embedding(len(chars) + 1, char_dim)
            self.emb_citation = nn.Embedding(5, 8)
            self.emb_rule = nn.Embedding(5, 8)
            self.emb_place = nn.Embedding(4, 4)
            self.emb_listed = nn.Embedding(6, 8)
            self.emb_lexical = nn.Embedding((len(TAGS) + 1) * LEXICAL_PLACES, 8)
            self.drop = nn.Dropout(0.3)
            self.lstm = nn.LSTM(char_dim + 36, hidden, batch_first=True, bidirectional=True)
            self.out = nn.Linear(2 * hidden, 5)

        def forward(self, chars, citation, rule, place, listed, lexical, lengths):
            x = torch.cat([self.emb_char(chars), self.emb_citation(citation), self.emb_rule(rule),
                           self.emb_place(place), self.emb_listed(listed), self.emb_lexical(lexical)], dim=-1)
            packed = nn.utils.rnn.pack_padded_sequence(self.drop(x), lengths, batch_first=True, enforce_sorted=False)
            h, _ = self.lstm(packed)
            h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=chars.shape[1])
            return self.out(self.drop(h))

    def evaluate(nets: list[nn.Module], items: list[Example]) -> str:
        """Tone errors (where the syllable is right) of the rules and of the corrected tones at
        a few thresholds (the last one, ``threshold``, is what gets written)."""
        for net in nets:
            net.eval()
        levels = sorted({0.0, 0.5, 0.7, threshold})
        rule_wrong = total = 0
        model_wrong = dict.fromkeys(levels, 0)
        with torch.no_grad():
            for k in range(0, len(items), 256):
                (c, t, r, p, s, x, y), lengths = tensors(items[k : k + 256])
                logits = sum(net(c, t, r, p, s, x, lengths) for net in nets) / len(nets)
                best = torch.softmax(logits, -1).max(-1)
                rule = torch.where(s < 5, s, r)  # the rules with the word list, as without the tagger
                mask = y >= 0
                total += int(mask.sum())
                rule_wrong += int(((rule != y) & mask).sum())
                for level in levels:
                    pred = torch.where(best.values >= level, best.indices, rule)
                    model_wrong[level] += int(((pred != y) & mask).sum())
        for net in nets:
            net.train()
        return f"tone errors of {total}: rules {rule_wrong / total:.2%}, corrected " + ", ".join(
            f"{model_wrong[v] / total:.2%} (≥{v})" for v in levels)

    nets: list[nn.Module] = []
    for member in range(members):
        torch.manual_seed(seed + member)
        random.seed(seed + member)
        net = Net()
        optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
        steps = epochs * ((len(train) + 31) // 32)
        # Cosine decay: at a constant rate the dev error jumps by ±0.05 points between epochs, so
        # the last epoch (the one written) would be a lottery ticket.
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
        for epoch in range(1, epochs + 1):
            random.shuffle(train)
            for k in range(0, len(train), 32):
                (c, t, r, p, s, x, y), lengths = tensors(train[k : k + 32])
                logits = net(c, t, r, p, s, x, lengths)
                loss = nn.functional.cross_entropy(logits.reshape(-1, 5), y.reshape(-1), ignore_index=-1)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
            print(f"member {member + 1} epoch {epoch}: " + (f"dev {evaluate([net], dev_examples)}" if dev_examples else "done"), flush=True)
        nets.append(net)
        if dev_examples and member:
            print(f"average of {len(nets)}: dev {evaluate(nets, dev_examples)}", flush=True)
    states = [{k: v.detach().numpy() for k, v in net.state_dict().items()} for net in nets]
    write_tagger(states, threshold, chars, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("erhua")
    e.add_argument("labels", type=Path, help="Biaobei prosody labels")
    e.add_argument("--ids", default="1-9000", help="utterances to learn from (1-8000 keeps 8001-9000 blind)")
    e.add_argument("--out", type=Path, default=ERHUA_OUT)
    e.add_argument("--crossval", type=int, default=0, metavar="FOLDS",
                   help="write nothing; report errors on held-out folds of --ids")
    t = sub.add_parser("tagger")
    t.add_argument("labels", type=Path, help="Biaobei prosody labels")
    t.add_argument("--ids", default="1-9000", help="utterances to train on (1-8000 keeps 8001-9000 blind)")
    t.add_argument("--dev", default="", help="utterances to report on after each epoch, e.g. 7001-8000 (outside --ids)")
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--threshold", type=float, default=0.5, help="confidence needed to change the rules' tone")
    t.add_argument("--hidden", type=int, default=64, help="LSTM units each way")
    t.add_argument("--char-dim", type=int, default=48)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--members", type=int, default=1, help="taggers (seeds) whose logits the written model averages")
    t.add_argument("--out", type=Path, default=TAGGER_OUT)
    args = parser.parse_args()
    low, high = (int(x) for x in args.ids.split("-"))
    if args.command == "erhua" and args.crossval:
        crossval_erhua(args.labels, (low, high), args.crossval)
    elif args.command == "erhua":
        learn_erhua(args.labels, (low, high), args.out)
    elif args.command == "tagger":
        dev = tuple(int(x) for x in args.dev.split("-")) if args.dev else None
        train_tagger(args.labels, (low, high), dev, args.epochs, args.threshold, args.out,
                     hidden=args.hidden, char_dim=args.char_dim, seed=args.seed,
                     members=args.members)


if __name__ == "__main__":
    main()
