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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert")
    c.add_argument("wheel", type=Path)
    c.add_argument("--candidates", choices=("pypinyin", "g2pm"), default="pypinyin")
    args = parser.parse_args()
    if args.command == "convert":
        convert(args.wheel, candidates_from=args.candidates)


if __name__ == "__main__":
    main()
