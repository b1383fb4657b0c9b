"""Build ``wyoming_indextts/data/polyphone.npz``: the polyphone BiLSTM's weights and vocabularies.

Step 1 (``convert``): take the Apache-2.0 weights of g2pM (Park & Lee, Interspeech 2020),
trained on the CPP train split, out of its PyPI wheel and store them as one float32 npz
with our own key names.

    pip download --no-deps g2pm -d /tmp/g2pm && python tools/train_polyphone.py convert /tmp/g2pm/g2pM-*.whl

Training-only tooling: nothing here is imported at run time.
"""

from __future__ import annotations

import argparse
import io
import pickle
import zipfile
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "wyoming_indextts" / "data" / "polyphone.npz"

# g2pM's PyTorch state-dict names → ours.
_KEYS = {
    "embedding.weight": "embedding",
    "lstm.weight_ih_l0": "fw_w_ih", "lstm.weight_hh_l0": "fw_w_hh",
    "lstm.bias_ih_l0": "fw_b_ih", "lstm.bias_hh_l0": "fw_b_hh",
    "lstm.weight_ih_l0_reverse": "bw_w_ih", "lstm.weight_hh_l0_reverse": "bw_w_hh",
    "lstm.bias_ih_l0_reverse": "bw_b_ih", "lstm.bias_hh_l0_reverse": "bw_b_hh",
    "logit_layer.0.weight": "fc1_w", "logit_layer.0.bias": "fc1_b",
    "logit_layer.2.weight": "fc2_w", "logit_layer.2.bias": "fc2_b",
}


def polyphone_entries(cedict: dict, char2idx: dict, class2idx: dict, candidates_from: str) -> list[str]:
    """``char:reading,reading`` for each character the model disambiguates.

    Which characters: those with more than one reading in g2pM's dictionary digest and in the
    model's vocabulary (the set it was trained on). Their candidate readings: every tone of the
    syllables in pypinyin's heteronyms (``pypinyin``, the default: no dictionary text of g2pM's is
    shipped) or g2pM's digest (``g2pm``), kept to the model's output classes.
    """
    from pypinyin import Style, pinyin

    classes = {c.replace("u:", "v") for c in class2idx}
    entries = []
    for char in sorted(c for c, prons in cedict.items() if len(c) == 1 and len(prons) > 1 and c in char2idx):
        if candidates_from == "g2pm":
            readings = [p.replace("u:", "v") for p in cedict[char]]
        else:
            readings = pinyin(char, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)[0]
            # Any tone of any syllable pypinyin knows for the character: its tone lists are incomplete.
            bases = {r.rstrip("12345") for r in readings}
            readings = [r if r[-1].isdigit() else r + "5" for r in readings]
            readings += sorted(c for c in classes if c[:-1] in bases)
        readings = list(dict.fromkeys(r for r in readings if r in classes))
        if len(readings) > 1:
            entries.append(f"{char}:{','.join(readings)}")
    return entries


def convert(wheel: Path, out: Path = OUT, candidates_from: str = "pypinyin") -> None:
    with zipfile.ZipFile(wheel) as archive:
        def load(name: str):
            return pickle.load(io.BytesIO(archive.read(f"g2pM/{name}")))

        checkpoint = load("np_ckpt.pkl")
        char2idx = load("char2idx.pkl")
        class2idx = load("class2idx.pkl")
        cedict = load("digest_cedict.pkl")
    arrays = {ours: np.asarray(checkpoint[theirs], dtype=np.float32) for theirs, ours in _KEYS.items()}
    chars = [""] * len(char2idx)
    for char, index in char2idx.items():
        chars[index] = char
    classes = [""] * len(class2idx)
    for label, index in class2idx.items():
        classes[index] = label
    # Index 0 pad, 1 unknown; g2pM marks sentence start/end with two Hangul syllables.
    arrays["chars"] = np.array(chars)
    arrays["classes"] = np.array(classes)
    arrays["polyphones"] = np.array(polyphone_entries(cedict, char2idx, class2idx, candidates_from))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


# --- fine-tuning ----------------------------------------------------------------------------


def baker_examples(labels: Path, ids: tuple[int, int]) -> list[tuple[str, int, str]]:
    """(sentence, position, dictionary reading) for polyphones in Biaobei utterances ``ids``.

    The labels are surface tones. A label that differs from our dictionary reading only by
    what sandhi or the neutral-tone list explains (3→2, →5, 一/不) is not a polyphone error and
    keeps our reading; a different syllable or another tone becomes the target, with a 2 put
    back to 3 where a third tone follows (the rise is sandhi, not the word).
    """
    import sys

    sys.path.insert(0, str(OUT.parents[2]))
    from wyoming_indextts.frontend.g2p_zh import G2PZh
    from wyoming_indextts.frontend.sentence import is_hanzi

    g2p = G2PZh()
    model = g2p._model
    examples = []
    for text, syllables in baker_utterances(labels, ids):
        text = "".join(c for c in text if is_hanzi(c) or not c.isalnum())
        hanzi = [i for i, c in enumerate(text) if is_hanzi(c)]
        if len(hanzi) != len(syllables):
            continue
        citation = g2p.citation(text)
        for n, i in enumerate(hanzi):
            char = text[i]
            if char in "一不" or not model.is_polyphone(char):
                continue
            label, ours = syllables[n].replace("u:", "v"), citation[i]
            candidates = model.candidates[char]
            if label == ours or label.endswith("5"):
                target = ours
            elif label[:-1] == ours[:-1] and label[-1] == "2" and ours[-1] == "3":
                target = ours
            else:
                target = label
                following = citation[hanzi[n + 1]] if n + 1 < len(hanzi) else ""
                if label.endswith("2") and following.endswith("3") and label[:-1] + "3" in candidates:
                    target = label[:-1] + "3"
            if target in candidates:
                examples.append((text, i, target))
    return examples


def baker_utterances(labels: Path, ids: tuple[int, int]) -> Iterator[tuple[str, list[str]]]:
    """(text without prosody marks, surface pinyin syllables) for Biaobei utterances in ``ids``."""
    lines = labels.read_text(encoding="utf-8-sig").splitlines()
    for head, pinyin in zip(lines[0::2], lines[1::2]):
        uid, _, text = head.partition("\t")
        if ids[0] <= int(uid) <= ids[1]:
            yield re.sub(r"#\d", "", text.strip()), pinyin.split()


def finetune(wheel_npz: Path, labels: Path, cpp_dir: Path, epochs: int = 4, out: Path = OUT, seed: int = 0) -> None:
    """Fine-tune the BiLSTM on Biaobei 000001-008000 (derived labels) and the even lines of CPP dev.

    The odd lines of CPP dev and Biaobei 008001-009000 are never seen: they are what we report.
    The last tenth of the training examples is kept for choosing the epoch.
    """
    import random

    import torch
    from torch import nn

    torch.manual_seed(seed)
    random.seed(seed)
    data = dict(np.load(wheel_npz))
    chars = data["chars"].tolist()
    classes = [c.replace("u:", "v") for c in data["classes"].tolist()]
    char_ids = {c: i for i, c in enumerate(chars) if i >= 4}
    class_ids = {c: i for i, c in enumerate(classes)}
    candidates = {}
    for entry in data["polyphones"].tolist():
        char, _, readings = entry.partition(":")
        candidates[char] = [class_ids[r] for r in readings.split(",") if r in class_ids]

    examples = baker_examples(labels, (1, 8000))
    print(f"{len(examples)} Biaobei examples")
    sent = (cpp_dir / "dev.sent").read_text(encoding="utf-8").splitlines()[0::2]
    lb = (cpp_dir / "dev.lb").read_text(encoding="utf-8").splitlines()[0::2]
    for sentence, label in zip(sent, lb):
        before, char, after = sentence.split("\u2581")
        label = label.strip().replace("u:", "v")
        if char in candidates and label in class_ids and class_ids[label] in candidates[char]:
            examples.append((before + char + after, len(before), label))
    random.shuffle(examples)
    cut = len(examples) // 10
    valid, train = examples[:cut], examples[cut:]
    print(f"{len(train)} training, {len(valid)} validation examples")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(*data["embedding"].shape, padding_idx=0)
            self.lstm = nn.LSTM(64, 32, batch_first=True, bidirectional=True)
            self.fc1 = nn.Linear(64, 32)
            self.fc2 = nn.Linear(32, len(classes))

        def forward(self, ids, lengths, positions):
            x = self.embedding(ids)
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
            h = out[torch.arange(len(positions)), positions]
            return self.fc2(torch.relu(self.fc1(h)))

    net = Net()
    with torch.no_grad():
        net.embedding.weight.copy_(torch.from_numpy(data["embedding"]))
        for direction, suffix in (("fw", ""), ("bw", "_reverse")):
            getattr(net.lstm, f"weight_ih_l0{suffix}").copy_(torch.from_numpy(data[f"{direction}_w_ih"]))
            getattr(net.lstm, f"weight_hh_l0{suffix}").copy_(torch.from_numpy(data[f"{direction}_w_hh"]))
            getattr(net.lstm, f"bias_ih_l0{suffix}").copy_(torch.from_numpy(data[f"{direction}_b_ih"]))
            getattr(net.lstm, f"bias_hh_l0{suffix}").copy_(torch.from_numpy(data[f"{direction}_b_hh"]))
        for name in ("fc1", "fc2"):
            getattr(net, name).weight.copy_(torch.from_numpy(data[f"{name}_w"]))
            getattr(net, name).bias.copy_(torch.from_numpy(data[f"{name}_b"]))

    def batch(items):
        seqs = [[2] + [char_ids.get(c, 1) for c in text] + [3] for text, _, _ in items]
        lengths = torch.tensor([len(s) for s in seqs])
        ids = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
        for k, s in enumerate(seqs):
            ids[k, : len(s)] = torch.tensor(s)
        positions = torch.tensor([p + 1 for _, p, _ in items])
        mask = torch.full((len(items), len(classes)), float("-inf"))
        for k, (text, p, _) in enumerate(items):
            mask[k, candidates[text[p]]] = 0.0
        targets = torch.tensor([class_ids[t] for _, _, t in items])
        return ids, lengths, positions, mask, targets

    def accuracy(items) -> float:
        net.eval()
        correct = 0
        with torch.no_grad():
            for k in range(0, len(items), 256):
                ids, lengths, positions, mask, targets = batch(items[k : k + 256])
                correct += int(((net(ids, lengths, positions) + mask).argmax(1) == targets).sum())
        net.train()
        return correct / len(items)

    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    best = (accuracy(valid), {k: v.clone() for k, v in net.state_dict().items()})
    print(f"epoch 0: validation {best[0]:.4f}")
    for epoch in range(1, epochs + 1):
        random.shuffle(train)
        for k in range(0, len(train), 64):
            ids, lengths, positions, mask, targets = batch(train[k : k + 64])
            loss = nn.functional.cross_entropy(net(ids, lengths, positions) + mask, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        score = accuracy(valid)
        print(f"epoch {epoch}: validation {score:.4f}")
        if score > best[0]:
            best = (score, {k: v.clone() for k, v in net.state_dict().items()})
    state = best[1]
    arrays = {key: value for key, value in data.items()}
    arrays["embedding"] = state["embedding.weight"].numpy()
    for direction, suffix in (("fw", ""), ("bw", "_reverse")):
        for part in ("w_ih", "w_hh", "b_ih", "b_hh"):
            name = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh"}[part]
            arrays[f"{direction}_{part}"] = state[f"lstm.{name}_l0{suffix}"].numpy()
    for name in ("fc1", "fc2"):
        arrays[f"{name}_w"] = state[f"{name}.weight"].numpy()
        arrays[f"{name}_b"] = state[f"{name}.bias"].numpy()
    np.savez_compressed(out, **{k: np.asarray(v) for k, v in arrays.items()})
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), validation {best[0]:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert")
    c.add_argument("wheel", type=Path)
    c.add_argument("--candidates", choices=("pypinyin", "g2pm"), default="pypinyin")
    n = sub.add_parser("neutral")
    n.add_argument("labels", type=Path, help="Biaobei prosody labels")
    n.add_argument("--ids", default="1-8000", help="utterances to learn from (keep the dev part out)")
    f = sub.add_parser("finetune")
    f.add_argument("base", type=Path, help="npz written by convert (g2pM's weights)")
    f.add_argument("labels", type=Path, help="Biaobei prosody labels")
    f.add_argument("cpp", type=Path, help="folder with CPP dev.sent / dev.lb (even lines are used)")
    f.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    if args.command == "finetune":
        finetune(args.base, args.labels, args.cpp, args.epochs)
    elif args.command == "neutral":
        low, high = (int(x) for x in args.ids.split("-"))
        learn_neutral(args.labels, (low, high))
    elif args.command == "convert":
        convert(args.wheel, candidates_from=args.candidates)


# --- neutral-tone word list ---------------------------------------------------------------

NEUTRAL_OUT = OUT.parent / "neutral_tone_words.txt"


def word_runs(g2p, text: str):
    """(words, spoken syllables per word) for each unpunctuated Chinese run, before erhua."""
    from wyoming_indextts.frontend import tone_sandhi

    words = g2p._words(text)
    g2p._disambiguate(text, words)
    run: list = []
    for word in words + [None]:
        if word is not None and word.pinyin:
            run.append(word)
            continue
        if run:
            yield [w.text for w in run], tone_sandhi.apply([w.text for w in run], [w.pinyin for w in run])
            run = []


def neutral_table(labels: Path, ranges: list[tuple[int, int]], min_count: int = 2,
                  min_share: float = 0.6) -> dict[str, str]:
    """Words where the Biaobei speaker's tone differs from ours in neutral-ness, majority vote.

    Runs the G2P without a word list over the utterances in ``ranges`` (never the held-out
    part), aligns each word's syllables with the surface labels (utterances with erhua are left
    out), and keeps, per word and position, a neutral tone that the labels have in at least
    ``min_share`` of ``min_count`` or more occurrences (or a full tone where we said neutral).
    """
    import collections
    import sys

    sys.path.insert(0, str(OUT.parents[2]))
    from wyoming_indextts.frontend import tone_sandhi
    from wyoming_indextts.frontend.g2p_zh import G2PZh
    from wyoming_indextts.frontend.sentence import is_hanzi

    tone_sandhi.neutral_words.cache_clear()
    original = tone_sandhi.neutral_words
    tone_sandhi.neutral_words = lambda: {}
    try:
        g2p = G2PZh(correct_tones=False)
        seen: collections.Counter = collections.Counter()
        flips: dict = collections.defaultdict(collections.Counter)
        for ids in ranges:
            for text, syllables in baker_utterances(labels, ids):
                if sum(is_hanzi(c) for c in text) != len(syllables):
                    continue
                position = 0
                for words, spoken in word_runs(g2p, text):
                    for word, ours in zip(words, spoken):
                        theirs = syllables[position : position + len(word)]
                        position += len(word)
                        seen[word] += 1
                        for k, (a, b) in enumerate(zip(ours, theirs)):
                            if (a[-1] == "5") != (b[-1] == "5") and a[:-1] == b[:-1]:
                                flips[(word, k)][b[-1]] += 1
    finally:
        tone_sandhi.neutral_words = original
    table: dict[str, list[str]] = {}
    for (word, k), counter in flips.items():
        digit, count = counter.most_common(1)[0]
        if count >= min_count and count >= min_share * seen[word]:
            table.setdefault(word, ["."] * len(word))[k] = digit
    return {word: "".join(pattern) for word, pattern in table.items()}


def learn_neutral(labels: Path, ids: tuple[int, int], out: Path = NEUTRAL_OUT,
                  min_count: int = 2, min_share: float = 0.6) -> None:
    """Write the word list of :func:`neutral_table` over utterances ``ids``."""
    table = neutral_table(labels, [ids], min_count, min_share)
    with out.open("w", encoding="utf-8") as f:
        f.write(f"# word<TAB>tone per syllable ('.' = as computed); learned from Biaobei {ids[0]:06d}-{ids[1]:06d}\n")
        f.write(f"# by tools/train_polyphone.py neutral (min count {min_count}, min share {min_share})\n")
        for word in sorted(table):
            f.write(f"{word}\t{table[word]}\n")
    print(f"wrote {out}: {len(table)} words")

if __name__ == "__main__":
    main()
