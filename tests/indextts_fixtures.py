"""Miniature IndexTTS exports with the real signatures, for differential tests.

Every graph has the published file name, input and output names, dtypes and ranks (2.5: the
layout ``index-tts-2-5-onnx`` runs, GPT logits [1, 8194], 24 KV-cache layers; 2: the layout
``indextts-onnx`` runs), the big graphs keep their weights in ``.onnx.data`` files as the real
exports do, and the folders carry the tokenizer and preprocessor files. The weights are tiny
and random but every output depends on its inputs, so that a feature, tokenizer or feeding
error changes the result:

- CAMPPlus pools mean(x²) and max(x) over time (its input is mean-normalised, so a plain mean
  would hide the features);
- the GPT's logits depend on the text ids, the conditioning, the language and, at each step,
  on the code, its position and every layer of the cache (each layer scaled differently);
  a stop logit that grows with the position ends generation after a few dozen codes;
- length regulators resize to the requested length; the flow estimator mixes all six inputs;
  the vocoder turns each mel frame into 256 samples.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import onnx
import soundfile as sf
from onnx import TensorProto, helper, numpy_helper

CODES = 8194
STOP = 8193
START = 8192
LAYERS = 24
HEADS, HEAD_DIM = 2, 4
WIDTH = HEADS * HEAD_DIM

W2V_PREPROCESSOR = {
    "feature_extractor_type": "SeamlessM4TFeatureExtractor", "feature_size": 80, "num_mel_bins": 80,
    "padding_side": "right", "padding_value": 1, "processor_class": "Wav2Vec2BertProcessor",
    "return_attention_mask": True, "sampling_rate": 16000, "stride": 2,
}

# Characters the miniature tokenizers know as whole tokens (others fall back to bytes).
CHARACTERS = "你真的要去银行取钱吗今天天气很好客厅温度二十三点五摄氏湿百分之六打开空调了明见他还我们是一个"
WORDS = ("the", " the", " garage", " door", " has", " been", " open", " for", " minutes", "er", "in", "an")


class Graph:
    """A small helper to write ONNX graphs without repeating helper.make_* calls."""

    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng(seed)
        self._n = 0

    def w(self, *shape: int, scale: float = 0.3) -> str:
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32))

    def project(self, x: str, rows: int, cols: int, scale: float) -> str:
        """x @ W with a rank-16 W (rows x cols): small files, every input still matters."""
        return self.op("MatMul", self.op("MatMul", x, self.w(rows, 16, scale=scale)), self.w(16, cols, scale=0.3))

    def const(self, value: np.ndarray) -> str:
        self._n += 1
        name = f"c{self._n}"
        self.weights[name] = np.asarray(value)
        return name

    def op(self, kind: str, *inputs: str, out: str | None = None, **attrs: object) -> str:
        self._n += 1
        name = out or f"t{self._n}"
        self.nodes.append(helper.make_node(kind, list(inputs), [name], **attrs))
        return name

    def mean(self, x: str, axis: int, keep: int = 0) -> str:
        return self.op("ReduceMean", x, axes=[axis], keepdims=keep)

    def resize_time(self, x: str, length: str, channels: int) -> str:
        """[1, T, C] → [1, length, C] (nearest), ``length`` an int64 [1] tensor."""
        sizes = self.op("Concat", self.const(np.array([1], np.int64)), length, self.const(np.array([channels], np.int64)), axis=0)
        return self.op("Resize", x, "", "", sizes, mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def save(self, path: Path, inputs: list, outputs: list, external: bool = False) -> None:
        graph = helper.make_graph(self.nodes, path.stem, inputs, outputs,
                                  [numpy_helper.from_array(v, k) for k, v in self.weights.items()])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        if external:  # as the real exports: weights in NAME.onnx.data beside the graph
            onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=path.name + ".data", size_threshold=1024)
        else:
            onnx.save(model, path)


def f32(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def i64(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, shape)


def i32(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT32, shape)


# -- graphs both layouts share in kind ------------------------------------------------------


def _campplus(path: Path, input_name: str, output_name: str) -> None:
    g = Graph(1)
    x = input_name
    pooled = g.op("Concat", g.mean(g.op("Mul", x, x), 1), g.op("ReduceMax", x, axes=[1], keepdims=0), axis=1)  # [1, 160]
    g.op("Tanh", g.op("MatMul", pooled, g.w(160, 192, scale=0.05)), out=output_name)
    g.save(path, [f32(input_name, [1, "T", 80])], [f32(output_name, [1, 192])])


def _semantic(path: Path, output_name: str) -> None:
    g = Graph(2)
    hidden = g.op("Tanh", g.op("MatMul", "input_features", g.w(160, 1024, scale=0.1)))
    mask = g.op("Unsqueeze", g.op("Cast", "attention_mask", to=TensorProto.FLOAT), g.const(np.array([2], np.int64)))
    g.op("Mul", hidden, mask, out=output_name)
    g.save(path, [f32("input_features", [1, "T", 160]), i64("attention_mask", [1, "T"])], [f32(output_name, [1, "T", 1024])],
           external=True)


def _velocity(path: Path, cond_name: str, lens_shape: list, output_name: str) -> None:
    g = Graph(3)
    c = g.op("Transpose", g.op("MatMul", cond_name, g.w(512, 80, scale=0.1)), perm=[0, 2, 1])
    s = g.op("Unsqueeze", g.op("MatMul", "style", g.w(192, 80, scale=0.1)), g.const(np.array([2], np.int64)))
    t = g.op("Unsqueeze", "t", g.const(np.array([1, 2], np.int64)))
    lens = g.op("Cast", g.op("ReduceMax", "x_lens", keepdims=0), to=TensorProto.FLOAT)
    mix = g.op("Add", g.op("Add", c, s), g.op("Mul", "prompt_x", g.const(np.array([0.5], np.float32))))
    mix = g.op("Add", g.op("Tanh", g.op("Add", mix, g.op("Mul", t, g.const(np.array([0.3], np.float32))))),
               g.op("Mul", lens, g.const(np.array([0.0], np.float32))))
    g.op("Sub", mix, "x", out=output_name)
    g.save(path, [f32("x", ["B", 80, "T"]), f32("prompt_x", ["B", 80, "T"]), i64("x_lens", lens_shape), f32("t", ["B"]),
                  f32("style", ["B", 192]), f32(cond_name, ["B", "T", 512])], [f32(output_name, ["B", 80, "T"])])


def _vocoder(path: Path, output_name: str) -> None:
    g = Graph(4)
    frames = g.op("Tanh", g.op("MatMul", g.op("Transpose", "mel", perm=[0, 2, 1]), g.w(80, 256, scale=0.05)))
    g.op("Reshape", frames, g.const(np.array([1, 1, -1], np.int64)), out=output_name)
    g.save(path, [f32("mel", [1, 80, "T"])], [f32(output_name, [1, 1, "N"])])


def _decoder_head(g: Graph, h: str, position: str) -> str:
    """Logits [.., 8194] from a hidden state, with a stop logit growing with ``position``."""
    logits = g.op("MatMul", h, g.const(_output_weights(g.rng)))
    stop = g.op("Sub", g.op("Mul", g.op("Cast", position, to=TensorProto.FLOAT), g.const(np.array([0.6], np.float32))),
                g.const(np.array([14.0], np.float32)))
    one_hot = np.zeros(CODES, np.float32)
    one_hot[STOP] = 1.0
    return g.op("Add", logits, g.op("Mul", g.const(one_hot), stop))


def _output_weights(rng: np.random.Generator) -> np.ndarray:
    weights = (rng.standard_normal((WIDTH, CODES)) * 0.6).astype(np.float32)
    weights[:, [1, START, STOP]] = 0.0  # logit 0: never the best code, the stop logit decides the end
    return weights


def _cache(g: Graph, hidden: str, text: str | None, past: list[str] | None, present: list[str]) -> None:
    """Each layer's key and value: (past or the text) followed by the new state, scaled per layer."""
    new = g.op("Transpose", g.op("Reshape", hidden, g.const(np.array([1, -1, HEADS, HEAD_DIM], np.int64))), perm=[0, 2, 1, 3])
    base = g.op("Concat", g.op("Transpose", g.op("Reshape", text, g.const(np.array([1, -1, HEADS, HEAD_DIM], np.int64))),
                               perm=[0, 2, 1, 3]), new, axis=2) if text else None
    for n, name in enumerate(present):
        scale = g.const(np.array([0.05 * (n + 1)], np.float32))
        if past:
            g.op("Concat", past[n], g.op("Mul", new, scale), axis=2, out=name)
        else:
            assert base is not None
            g.op("Mul", base, scale, out=name)


def _context(g: Graph, past: list[str]) -> str:
    """A weighted sum over every cache tensor's mean: swapping layers changes it."""
    total = None
    for n, name in enumerate(past):
        pooled = g.op("Reshape", g.mean(name, 2), g.const(np.array([1, WIDTH], np.int64)))
        term = g.op("Mul", pooled, g.const(np.array([(-1) ** n * (1 + n % 7) * 0.4], np.float32)))
        total = term if total is None else g.op("Add", total, term)
    assert total is not None
    return total


def _kv_specs(names: list[str], length: str) -> list:
    return [f32(name, [1, HEADS, length, HEAD_DIM]) for name in names]


# -- IndexTTS-2.5 ------------------------------------------------------------------------------


def build_voice(root: Path, clips: tuple[str, ...] = ("alice", "bob"), options: dict | None = None) -> Path:
    """The IndexTTS-2.5 layout (``index-tts-2-5-onnx``) in miniature; returns ``root``."""
    _campplus(root / "campplus.onnx", "fbank", "spk_emb")
    _semantic(root / "semantic_model/semantic_model.onnx", "semantic_feat")

    g = Graph(5)
    pooled = g.op("Add", g.mean("feat", 1), g.op("Mul", g.op("Cast", "ilens", to=TensorProto.FLOAT), g.const(np.array([0.0], np.float32))))
    g.op("Tanh", g.project(pooled, 1024, 1280, 0.05), out="emo_vec")
    g.save(root / "emo_vec.onnx", [f32("feat", [1, "T", 1024]), i64("ilens", [1])], [f32("emo_vec", [1, 1280])])

    text_vocab = _tiktoken_size() + 2000  # room for the special tokens after the base vocabulary
    kv_out = [f"present_kv_{i}_{kind}" for i in range(LAYERS) for kind in "kv"]
    kv_in = [f"past_kv_{i}_{kind}" for i in range(LAYERS) for kind in "kv"]
    g = Graph(6)
    text = g.op("Gather", g.w(text_vocab, WIDTH, scale=0.8), "text_ids", axis=0)  # [1, L, 8]
    h = g.op("Add", g.mean(text, 1), g.op("MatMul", g.mean("conds", 1), g.w(1280, WIDTH, scale=0.3)))
    h = g.op("Tanh", g.op("Add", h, g.op("Gather", g.w(2, WIDTH), "lang_id", axis=0)))  # [1, 8]
    g.op("Identity", _decoder_head(g, h, g.const(np.array(0, np.int64))), out="logits")
    _cache(g, h, text, None, kv_out)
    g.save(root / "gpt_prefill/gpt_prefill.onnx", [i64("text_ids", [1, "L"]), f32("conds", [1, 3, 1280]), i64("lang_id", [1])],
           [f32("logits", [1, CODES]), *_kv_specs(kv_out, "S")], external=True)

    g = Graph(16)
    h = g.op("Add", g.op("Reshape", g.op("Gather", g.w(CODES, WIDTH, scale=0.8), "token", axis=0), g.const(np.array([1, WIDTH], np.int64))),
             g.op("Gather", g.w(2048, WIDTH, scale=0.8), "pos_idx", axis=0))
    h = g.op("Tanh", g.op("Add", h, _context(g, kv_in)))
    g.op("Identity", _decoder_head(g, h, "pos_idx"), out="logits")
    _cache(g, h, None, kv_in, kv_out)
    g.save(root / "gpt_step/gpt_step.onnx", [i64("token", [1, 1]), i64("pos_idx", [1]), *_kv_specs(kv_in, "S")],
           [f32("logits", [1, CODES]), *_kv_specs(kv_out, "S1")], external=True)

    g = Graph(7)
    g.op("MatMul", g.op("Gather", g.w(CODES, 16, scale=0.5), "codes", axis=0), g.w(16, 1024, scale=0.5), out="latent")
    g.save(root / "semantic_codec_decode.onnx", [i64("codes", [1, "T"])], [f32("latent", [1, "T", 1024])])

    g = Graph(8)
    proj = g.op("Tanh", g.project("x", 1024, 512, 0.05))
    length = g.op("Slice", g.op("Shape", "template"), g.const(np.array([1], np.int64)), g.const(np.array([2], np.int64)))
    g.op("Identity", g.resize_time(proj, length, 512), out="out")
    g.save(root / "length_regulator.onnx", [f32("x", [1, "T", 1024]), f32("template", [1, "T_out", 1])], [f32("out", [1, "T_out", 512])])

    _velocity(root / "cfm_estimator/cfm_estimator.onnx", "cond", [1], "v")
    _vocoder(root / "bigvgan.onnx", "wav")

    _write_tiktoken(root / "multilingual_zh_ja_yue_char_del.tiktoken")
    rng = np.random.default_rng(9)
    np.savez(root / "spk_proj.npz", weight=(rng.standard_normal((1280, 192)) * 0.05).astype(np.float32),
             bias=(rng.standard_normal(1280) * 0.05).astype(np.float32))
    _w2v_config(root)
    _clips(root, clips)
    _manifest(root, "indextts-test", options)
    return root


def _tiktoken_tokens() -> list[bytes]:
    """A byte-level vocabulary in the order of the real one (printable bytes first, so "!" is
    id 0 and '"' id 1), then character and word merges."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    order = printable + [b for b in range(256) if b not in printable]
    tokens = [bytes([b]) for b in order]
    for char in dict.fromkeys(CHARACTERS):
        encoded = char.encode()
        for cut in (2, 3):
            if encoded[:cut] not in tokens:
                tokens.append(encoded[:cut])
    for word in WORDS:
        for cut in range(2, len(word.encode()) + 1):
            if word.encode()[:cut] not in tokens:
                tokens.append(word.encode()[:cut])
    return tokens


def _tiktoken_size() -> int:
    return len(_tiktoken_tokens())


def _write_tiktoken(path: Path) -> None:
    path.write_text("".join(f"{base64.b64encode(t).decode()} {rank}\n" for rank, t in enumerate(_tiktoken_tokens())), encoding="utf-8")


def _w2v_config(root: Path) -> None:
    folder = root / "hf_cache/w2v-bert-2.0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "preprocessor_config.json").write_text(json.dumps(W2V_PREPROCESSOR), encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({"model_type": "wav2vec2-bert", "hidden_size": 1024}), encoding="utf-8")


def speech_like(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Voiced bursts with digital silence between them (the stretches that hit the fbank floor)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 40 * seed + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / rate) / k for k in range(1, 8))
    envelope = (np.sin(2 * np.pi * 2.1 * t) > -0.2).astype(np.float64)
    audio = 0.25 * voiced * envelope + 0.01 * rng.standard_normal(len(t)) * envelope
    return audio.astype(np.float32)


def _clips(root: Path, names: tuple[str, ...]) -> None:
    (root / "voices").mkdir(exist_ok=True)
    for k, name in enumerate(names):
        rate = (24000, 16000, 22050)[k % 3]
        sf.write(root / "voices" / f"{name}.wav", speech_like(1.6 + 0.3 * k, rate, k), rate)


def _manifest(root: Path, name: str, options: dict | None) -> None:
    (root / "voice.json").write_text(json.dumps({
        "name": name, "engine": "indextts", "languages": ["zh_CN", "zh", "en"], "sample_rate": 22050,
        "description": "miniature IndexTTS export for tests",
        "options": options if options is not None else {"steps": 3, "top_k": 1, "max_tokens": 60, "seed": 0},
    }), encoding="utf-8")


# -- IndexTTS-2 --------------------------------------------------------------------------------


def build_voice2(root: Path, clips: tuple[str, ...] = ("alice", "bob"), options: dict | None = None) -> Path:
    """The IndexTTS-2 layout (``indextts-onnx``, int8 file names as published) in miniature."""
    bpe = _write_bpe(root / "bpe.model")
    _semantic(root / "wav2vec2bert_int8.onnx", "semantic_emb")

    g = Graph(12)
    g.op("Div", g.op("Round", g.op("Mul", "input", g.const(np.array([4.0], np.float32)))), g.const(np.array([4.0], np.float32)), out="quantized")
    g.save(root / "semantic_codec_int8.onnx", [f32("input", [1, "T", 1024])], [f32("quantized", [1, "T", 1024])])

    _campplus(root / "campplus_int8.onnx", "input", "style")

    kv_out = [f"present_{kind}.{i}" for i in range(LAYERS) for kind in ("key", "value")]
    kv_in = [f"past_{kind}.{i}" for i in range(LAYERS) for kind in ("key_values", "values")]
    speaker_inputs = [f32("spk_cond", [1, "Ts", 1024]), i32("text_tokens", [1, "L"]), f32("emo_cond", [1, "Te", 1024]),
                      i64("cond_lengths", [1]), i64("emo_cond_lengths", [1])]

    def speaker(g: Graph) -> str:
        spk = g.op("MatMul", g.mean("spk_cond", 1), g.w(1024, WIDTH, scale=0.3))
        emo = g.op("MatMul", g.mean("emo_cond", 1), g.w(1024, WIDTH, scale=0.3))
        lengths = g.op("Cast", g.op("Add", "cond_lengths", "emo_cond_lengths"), to=TensorProto.FLOAT)
        return g.op("Add", g.op("Add", spk, emo), g.op("Mul", lengths, g.const(np.array([0.0], np.float32))))

    g = Graph(13)
    text = g.op("Gather", g.w(bpe, WIDTH, scale=0.8), g.op("Cast", "text_tokens", to=TensorProto.INT64), axis=0)  # [1, L, 8]
    h = g.op("Tanh", g.op("Add", g.mean(text, 1), speaker(g)))  # [1, 8]
    per_position = g.op("Tanh", g.op("Add", text, g.op("Unsqueeze", h, g.const(np.array([1], np.int64)))))  # [1, L, 8]
    head = _decoder_head(g, per_position, g.const(np.array(0, np.int64)))
    g.op("Identity", head, out="logits")
    _cache(g, h, text, None, kv_out)
    g.save(root / "gpt2_init_int8.onnx", speaker_inputs, [f32("logits", [1, "L", CODES]), *_kv_specs(kv_out, "S")], external=True)

    g = Graph(17)
    position = g.op("Sub", g.op("Squeeze", g.op("Slice", g.op("Shape", "attention_mask"), g.const(np.array([1], np.int64)),
                                                 g.const(np.array([2], np.int64)))), "mel_len")
    h = g.op("Add", g.op("Reshape", g.op("Gather", g.w(CODES, WIDTH, scale=0.8), "input_ids", axis=0), g.const(np.array([1, WIDTH], np.int64))),
             g.op("Gather", g.w(2048, WIDTH, scale=0.8), position, axis=0))
    h = g.op("Tanh", g.op("Add", h, _context(g, kv_in)))
    head = _decoder_head(g, g.op("Unsqueeze", h, g.const(np.array([1], np.int64))), position)
    g.op("Identity", head, out="logits")
    _cache(g, h, None, kv_in, kv_out)
    g.save(root / "gpt2_step_int8.onnx", [i64("input_ids", [1, 1]), i64("attention_mask", [1, "A"]), i64("mel_len", []),
                                           *_kv_specs(kv_in, "S")], [f32("logits", [1, 1, CODES]), *_kv_specs(kv_out, "S1")],
           external=True)

    g = Graph(14)
    codes = g.op("Gather", g.w(CODES, 16, scale=0.8), "mel_codes", axis=0)  # [1, T, 16]
    text = g.op("Gather", g.w(bpe, 16, scale=0.8), g.op("Cast", "text_tokens", to=TensorProto.INT64), axis=0)
    mixed = g.op("Add", codes, g.op("Unsqueeze", g.op("Add", g.mean(text, 1), g.op("MatMul", speaker(g), g.w(WIDTH, 16))),
                                    g.const(np.array([1], np.int64))))
    g.op("Tanh", g.op("MatMul", mixed, g.w(16, 1280, scale=0.3)), out="latent")
    g.save(root / "gpt2_forward_int8.onnx", [*speaker_inputs[:2], i64("mel_codes", [1, "T"]), *speaker_inputs[2:]],
           [f32("latent", [1, "T", 1280])], external=True)

    g = Graph(15)
    g.op("Identity", g.resize_time(g.op("Tanh", g.project("s_ref", 1024, 512, 0.05)), "ref_target_lengths", 512),
         out="prompt_condition")
    g.save(root / "s2mel_ref_int8.onnx", [f32("s_ref", [1, "T", 1024]), i64("ref_target_lengths", [1])], [f32("prompt_condition", [1, "P", 512])])

    g = Graph(16)
    codes = g.op("MatMul", g.op("Gather", g.w(CODES, 16, scale=0.3), "mel_codes", axis=0), g.w(16, 512))
    mixed = g.op("Add", codes, g.project("latent", 1280, 512, 0.05))
    g.op("Identity", g.resize_time(g.op("Tanh", mixed), "target_lengths", 512), out="cond")
    g.save(root / "s2mel_gen_int8.onnx", [i64("mel_codes", [1, "T"]), f32("latent", [1, "T", 1280]), i64("target_lengths", [1])],
           [f32("cond", [1, "F", 512])])

    _velocity(root / "dit_step.onnx", "mu", ["B"], "velocity")
    _vocoder(root / "bigvgan.onnx", "audio")
    _clips(root, clips)
    _manifest(root, "indextts2-test", options)
    return root


# The miniature BPE model learns from lines shaped as upstream's tokenizer input: CJK characters
# split by spaces, upper-case Latin words and inline pinyin.
_BPE_LINES = [
    "你 真 的 要 去 银 HANG2 取 钱 吗 ?", "今 天 天 气 很 好 .", "THE GARAGE DOOR HAS BEEN OPEN FOR FIFTEEN MINUTES .",
    "客 厅 温 度 二 十 三 点 五 摄 氏 度 , 湿 度 百 分 之 六 十 .", "打 开 空 调 了 吗 ?", "我 们 是 一 个 QV4 XING2 .",
    "HELLO WORLD , IT IS A TEST !", "明 天 见 !", "' 好 ' , 明 天 见 - ~",
]


def _write_bpe(path: Path) -> int:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_BPE_LINES * 20), model_writer=model, vocab_size=160,
                                   model_type="bpe", character_coverage=1.0, num_threads=1, minloglevel=2,
                                   user_defined_symbols=["HANG2", "QV4", "XING2"], bos_id=0, eos_id=1, unk_id=2, pad_id=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.getvalue())
    return spm.SentencePieceProcessor(model_file=str(path)).get_piece_size()
