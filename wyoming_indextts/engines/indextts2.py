"""IndexTTS-2 — the model the project's article names — in the ONNX layout ``indextts-onnx`` runs.

::

    clip ─► wav2vec2bert ─► semantic_codec ─► s2mel_ref ─► prompt condition
         ─► campplus (style)
    text ─► bpe.model (sentencepiece; CJK split, upper case, inline pinyin 银HANG2)
         ─► gpt2_init + gpt2_step (KV cache, sampling) ─► codes ─► gpt2_forward ─► latent
    codes + latent ─► s2mel_gen ─► dit_step (Euler, CFG) ─► mel ─► bigvgan ─► 22,050 Hz audio

The published files are int8 (``NAME_int8.onnx``) except ``dit_step`` and ``bigvgan``; fp32
graphs of the same names are used where the int8 ones are absent. Features, sampling and the
flow solver are shared with IndexTTS-2.5 (``indextts_common``) and follow upstream's PyTorch
code where ``indextts-onnx`` takes shortcuts (see the README).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..frontend import Sentence
from .indextts import (
    F32,
    I32,
    I64,
    Conditioning,
    Finding,
    GraphSpec,
    IndexTTSBase,
    Layout,
    tensor,
)
from .indextts_common import (
    campplus_fbank,
    map_punctuation,
    pinyin_choices,
    reference_mel,
    require_extra,
    spell_numbers,
    text_language,
)

BPE_MODEL = "bpe.model"
KV_IN = ("past_key_values.{i}", "past_values.{i}")
KV_OUT = ("present_key.{i}", "present_value.{i}")


def _int8_first(name: str) -> tuple[str, ...]:
    return (f"{name}_int8.onnx",)


LAYOUT = Layout(
    name="IndexTTS-2",
    graphs=(
        GraphSpec("wav2vec2bert", "wav2vec2bert.onnx", (tensor("input_features", F32, 3), tensor("attention_mask", I64, 2)),
                  (tensor("semantic_emb", F32, 3),), variants=_int8_first("wav2vec2bert")),
        GraphSpec("semantic_codec", "semantic_codec.onnx", (tensor("input", F32, 3),), (tensor("quantized", F32, 3),),
                  variants=_int8_first("semantic_codec")),
        GraphSpec("campplus", "campplus.onnx", (tensor("input", F32, 3),), (tensor("style", F32, 2),), variants=_int8_first("campplus")),
        GraphSpec("gpt2_init", "gpt2_init.onnx",
                  (tensor("spk_cond", F32, 3), tensor("text_tokens", I32, 2), tensor("emo_cond", F32, 3), tensor("cond_lengths", I64, 1),
                   tensor("emo_cond_lengths", I64, 1)), (tensor("logits", F32, 3),),
                  kv_outputs=KV_OUT, fetch_by_name=True, variants=_int8_first("gpt2_init")),
        GraphSpec("gpt2_step", "gpt2_step.onnx", (tensor("input_ids", I64, 2), tensor("attention_mask", I64, 2), tensor("mel_len", I64, 0)),
                  (tensor("logits", F32, 3),), kv_inputs=KV_IN, kv_outputs=KV_OUT, fetch_by_name=True,
                  variants=_int8_first("gpt2_step")),
        GraphSpec("gpt2_forward", "gpt2_forward.onnx",
                  (tensor("spk_cond", F32, 3), tensor("text_tokens", I32, 2), tensor("mel_codes", I64, 2), tensor("emo_cond", F32, 3),
                   tensor("cond_lengths", I64, 1), tensor("emo_cond_lengths", I64, 1), tensor("text_lengths", I64, 1, optional=True),
                   tensor("mel_lengths", I64, 1, optional=True)), (tensor("latent", F32, 3),), variants=_int8_first("gpt2_forward")),
        GraphSpec("s2mel_ref", "s2mel_ref.onnx", (tensor("s_ref", F32, 3), tensor("ref_target_lengths", I64, 1)),
                  (tensor("prompt_condition", F32, 3),), variants=_int8_first("s2mel_ref")),
        GraphSpec("s2mel_gen", "s2mel_gen.onnx", (tensor("mel_codes", I64, 2), tensor("latent", F32, 3), tensor("target_lengths", I64, 1)),
                  (tensor("cond", F32, 3),), variants=_int8_first("s2mel_gen")),
        GraphSpec("dit_step", "dit_step.onnx",
                  (tensor("x", F32, 3), tensor("prompt_x", F32, 3), tensor("x_lens", I64, 1), tensor("t", F32, 1), tensor("style", F32, 2),
                   tensor("mu", F32, 3)), (tensor("velocity", F32, 3),)),
        GraphSpec("bigvgan", "bigvgan.onnx", (tensor("mel", F32, 3),), (tensor("audio", F32, 3),)),
    ),
    files=(BPE_MODEL,),
    marker=(BPE_MODEL, "gpt2_init.onnx", "gpt2_init_int8.onnx", "dit_step.onnx"),
)

# tokenize_by_CJK_char's ranges: every such character becomes a word of its own.
_CJK = re.compile(r"([\u1100-\u11ff\u2e80-\ua4cf\ua840-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff65-\uffdc\U00020000-\U0002ffff])")


def split_cjk(text: str) -> str:
    """``你好hello 世界`` → ``你 好 HELLO 世 界``, as the BPE model was trained."""
    return " ".join(w.strip().upper() for w in _CJK.split(text.strip()) if w.strip())


class IndexTTS2Engine(IndexTTSBase):
    """The IndexTTS-2 export; speakers are the clips in ``voices/*.wav``."""

    layout = LAYOUT

    def _load_text(self, root: Path) -> None:
        spm = require_extra("sentencepiece")
        self._bpe = spm.SentencePieceProcessor(model_file=str(root / BPE_MODEL))

    def prepare_text(self, sentence: Sentence) -> str:
        """Our polyphone choices as inline pinyin in place of the character (``银HANG2``),
        punctuation mapped, CJK characters split, upper case."""
        chinese = text_language(sentence) == "zh"
        if not chinese:  # no Chinese character: no pinyin choices either
            text = spell_numbers(sentence.normalized)
        else:
            chars = list(sentence.normalized)
            for index, pinyin in pinyin_choices(sentence).items():
                chars[index] = pinyin
            text = "".join(chars)
        if len(text.strip()) == 1:
            return text  # upstream encodes a lone character as it is, unnormalized
        return split_cjk(map_punctuation(text, chinese))

    def encode(self, text: str, language: str) -> list[int]:
        return list(self._bpe.encode(text)) if text else []

    def analyse(self, audio_22k: np.ndarray, audio_16k: np.ndarray) -> Conditioning:
        s = self._sessions
        features, mask = self._features(audio_16k)
        (semantic,) = s["wav2vec2bert"].run(None, {"input_features": features, "attention_mask": mask})[:1]
        (quantized,) = s["semantic_codec"].run(None, {"input": semantic})[:1]
        ref_mel = reference_mel(audio_22k)
        (prompt,) = s["s2mel_ref"].run(None, {"s_ref": quantized, "ref_target_lengths": np.array([ref_mel.shape[-1]], np.int64)})[:1]
        (style,) = s["campplus"].run(None, {"input": campplus_fbank(audio_16k)})[:1]
        # Upstream takes the emotion reference from a second, direct 16 kHz read of the same clip;
        # the export (like indextts-onnx) conditions both on this one analysis.
        return Conditioning(style.astype(np.float32), semantic.astype(np.float32), prompt.astype(np.float32), ref_mel)

    def _speaker_inputs(self, conditioning: Conditioning) -> dict[str, np.ndarray]:
        frames = np.array([conditioning.gpt_cond.shape[1]], np.int64)
        return {"spk_cond": conditioning.gpt_cond, "emo_cond": conditioning.gpt_cond, "cond_lengths": frames, "emo_cond_lengths": frames}

    def _prefill(self, text_ids: np.ndarray, conditioning: Conditioning, language: str) -> tuple[np.ndarray, Any]:
        names = self._cache_names(KV_OUT)
        outputs = self._sessions["gpt2_init"].run(["logits", *names], {
            **self._speaker_inputs(conditioning), "text_tokens": text_ids.astype(np.int32)})
        cache = list(outputs[1:])
        # mel_len stays at the prefill length - 1, so that the step graph's position index
        # (mask length - mel_len) starts at 2, as upstream's generate() does.
        return outputs[0][0, -1], {"cache": cache, "length": cache[0].shape[2], "mel_len": np.array(cache[0].shape[2] - 1, np.int64)}

    def _step(self, state: Any, token: int, index: int) -> np.ndarray:
        feeds = {"input_ids": np.array([[token]], np.int64), "attention_mask": np.ones((1, state["length"] + 1), np.int64),
                 "mel_len": state["mel_len"]}
        feeds.update(zip(self._cache_names(KV_IN), state["cache"]))
        outputs = self._sessions["gpt2_step"].run(["logits", *self._cache_names(KV_OUT)], feeds)
        state["cache"] = list(outputs[1:])
        state["length"] += 1
        return outputs[0][0, -1]

    def semantic_condition(self, codes: np.ndarray, text_ids: np.ndarray, conditioning: Conditioning, frames: int) -> np.ndarray:
        mel_codes = codes[None].astype(np.int64)
        (latent,) = self._sessions["gpt2_forward"].run(None, self._feed("gpt2_forward", {
            **self._speaker_inputs(conditioning), "text_tokens": text_ids.astype(np.int32), "mel_codes": mel_codes,
            "text_lengths": np.array([text_ids.shape[1]], np.int64), "mel_lengths": np.array([mel_codes.shape[1]], np.int64)}))[:1]
        (condition,) = self._sessions["s2mel_gen"].run(None, {
            "mel_codes": mel_codes, "latent": latent, "target_lengths": np.array([frames], np.int64)})[:1]
        return condition.astype(np.float32)

    def _velocity(self, x: np.ndarray, prompt_x: np.ndarray, t: np.ndarray, style: np.ndarray, cond: np.ndarray) -> np.ndarray:
        lengths = np.full(x.shape[0], x.shape[-1], np.int64)
        return self._sessions["dit_step"].run(None, {"x": x, "prompt_x": prompt_x, "x_lens": lengths, "t": t,
                                                     "style": style, "mu": cond})[0]


def check_bpe(root: Path) -> Finding:
    path = root / BPE_MODEL
    if not path.is_file():
        return Finding("error", BPE_MODEL, "missing")
    try:
        spm = require_extra("sentencepiece")
        model = spm.SentencePieceProcessor(model_file=str(path))
    except Exception as err:  # noqa: BLE001 — sentencepiece raises plain RuntimeError/OSError
        return Finding("error", BPE_MODEL, f"unusable: {err}")
    pinyin = any(model.piece_to_id(piece) != model.unk_id() for piece in ("▁HANG2", "HANG2"))
    return Finding("ok", BPE_MODEL, f"{model.get_piece_size()} pieces; inline pinyin (HANG2) {'known' if pinyin else 'not in the vocabulary'}")
