"""A miniature IndexTTS-2.5 export: every graph with the real names, inputs and outputs,
tiny deterministic weights, in the real folder layout. Used to test the orchestration."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import onnx
import soundfile as sf
from onnx import TensorProto, helper, numpy_helper

VOCAB_CODES = 8194
STOP = 8193


def _save(path: Path, nodes: list, inputs: list, outputs: list, initializers: dict[str, np.ndarray]) -> None:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, [numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


def f32(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def i64(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, shape)


def build_voice(root: Path, layers: int = 2, codes_before_stop: int = 6, clips: tuple[str, ...] = ("alice", "bob")) -> Path:
    """Write the miniature export into ``root`` and return it."""
    rng = np.random.default_rng(7)
    w = lambda *shape: (rng.standard_normal(shape) * 0.05).astype(np.float32)  # noqa: E731
    heads, dim = 2, 4

    _save(root / "campplus.onnx",
          [helper.make_node("ReduceMean", ["fbank"], ["pooled"], axes=[1], keepdims=0), helper.make_node("MatMul", ["pooled", "W"], ["embedding"])],
          [f32("fbank", [1, "T", 80])], [f32("embedding", [1, 192])], {"W": w(80, 192)})
    _save(root / "semantic_model/semantic_model.onnx",
          [helper.make_node("MatMul", ["input_features", "W"], ["hidden"]), helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
           helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]), helper.make_node("Mul", ["hidden", "mask3"], ["features"])],
          [f32("input_features", [1, "T", 160]), i64("attention_mask", [1, "T"])], [f32("features", [1, "T", 1024])],
          {"W": w(160, 1024), "axis2": np.array([2], np.int64)})
    _save(root / "emo_vec.onnx",
          [helper.make_node("ReduceMean", ["feat"], ["pooled"], axes=[1], keepdims=0), helper.make_node("MatMul", ["pooled", "W"], ["emo"]),
           helper.make_node("Cast", ["ilens"], ["ilensf"], to=TensorProto.FLOAT), helper.make_node("Mul", ["emo", "zero"], ["ignored"]),
           helper.make_node("Add", ["ignored", "ilensf"], ["lens1"]), helper.make_node("Mul", ["lens1", "zero"], ["lens0"]), helper.make_node("Add", ["emo", "lens0"], ["emo_vec"])],
          [f32("feat", [1, "Te", 1024]), i64("ilens", [1])], [f32("emo_vec", [1, 1280])], {"W": w(1024, 1280), "zero": np.zeros(1, np.float32)})

    # GPT: logits peak at a known code for each position, then at the stop code.
    positions = 64
    table = np.zeros((positions, VOCAB_CODES), np.float32)
    for pos in range(positions):
        table[pos, STOP if pos >= codes_before_stop + 1 else (pos * 37) % 8192] = 50.0
    kv_outputs, kv_nodes = [], []
    for i in range(layers):
        for kind in ("k", "v"):
            name = f"present_{i}_{kind}"
            kv_nodes.append(helper.make_node("Identity", ["kv4"], [name]))
            kv_outputs.append(f32(name, [1, heads, "S", dim]))
    _save(root / "gpt_prefill/gpt_prefill.onnx",
          [helper.make_node("Gather", ["kv_table", "text_ids"], ["kv_rows"], axis=0),  # [1, L, 8]
           helper.make_node("Reshape", ["kv_rows", "kv_shape"], ["kv_l"]), helper.make_node("Transpose", ["kv_l"], ["kv4"], perm=[0, 2, 1, 3]),
           helper.make_node("Gather", ["table", "zero_index"], ["logits"], axis=0),
           helper.make_node("ReduceSum", ["conds"], ["conds_sum"], keepdims=0), helper.make_node("Cast", ["lang_id"], ["lang_f"], to=TensorProto.FLOAT),
           *kv_nodes],
          [i64("text_ids", [1, "L"]), f32("conds", [1, 3, 1280]), i64("lang_id", [1])], [f32("logits", [VOCAB_CODES]), *kv_outputs],
          {"kv_table": w(300, heads * dim), "kv_shape": np.array([1, -1, heads, dim], np.int64), "table": table, "zero_index": np.array(0, np.int64)})
    step_inputs = [i64("token", [1, 1]), i64("pos_idx", [1])]
    step_nodes = [helper.make_node("Gather", ["table", "pos_idx"], ["logits2"], axis=0), helper.make_node("Reshape", ["logits2", "flat"], ["logits"])]
    step_outputs = [f32("logits", [VOCAB_CODES])]
    for i in range(layers):
        for kind in ("k", "v"):
            step_inputs.append(f32(f"past_kv_{i}_{kind}", [1, heads, "S", dim]))
            step_nodes.append(helper.make_node("Concat", [f"past_kv_{i}_{kind}", "new_kv"], [f"present_{i}_{kind}"], axis=2))
            step_outputs.append(f32(f"present_{i}_{kind}", [1, heads, "S1", dim]))
    _save(root / "gpt_step/gpt_step.onnx", step_nodes, step_inputs, step_outputs,
          {"table": table, "flat": np.array([VOCAB_CODES], np.int64), "new_kv": w(1, heads, 1, dim)})

    _save(root / "semantic_codec_decode.onnx", [helper.make_node("Gather", ["E", "codes"], ["latent"], axis=0)],
          [i64("codes", [1, "T"])], [f32("latent", [1, "T", 1024])], {"E": w(VOCAB_CODES, 1024)})
    _save(root / "length_regulator.onnx",
          [helper.make_node("ReduceMean", ["x"], ["pooled"], axes=[1], keepdims=1), helper.make_node("MatMul", ["pooled", "W"], ["proj"]),
           helper.make_node("Add", ["proj", "template"], ["cond"])],
          [f32("x", [1, "T", 1024]), f32("template", [1, "T_out", 1])], [f32("cond", [1, "T_out", 512])], {"W": w(1024, 512)})
    _save(root / "cfm_estimator/cfm_estimator.onnx",
          [helper.make_node("Neg", ["x"], ["nx"]), helper.make_node("MatMul", ["cond", "Wc"], ["c80"]), helper.make_node("Transpose", ["c80"], ["ct"], perm=[0, 2, 1]),
           helper.make_node("MatMul", ["style", "Ws"], ["s80"]), helper.make_node("Unsqueeze", ["s80", "axis2"], ["s3"]),
           helper.make_node("Add", ["nx", "ct"], ["a"]), helper.make_node("Add", ["a", "s3"], ["b"]),
           helper.make_node("Mul", ["prompt_x", "half"], ["p"]), helper.make_node("Add", ["b", "p"], ["velocity"])],
          [f32("x", [2, 80, "T"]), f32("prompt_x", [2, 80, "T"]), i64("x_lens", [1]), f32("t", [2]), f32("style", [2, 192]), f32("cond", [2, "T", 512])],
          [f32("velocity", [2, 80, "T"])], {"Wc": w(512, 80), "Ws": w(192, 80), "axis2": np.array([2], np.int64), "half": np.array([0.5], np.float32)})
    _save(root / "bigvgan.onnx",
          [helper.make_node("ReduceMean", ["mel"], ["m"], axes=[1], keepdims=1), helper.make_node("Tanh", ["m"], ["t"]),
           helper.make_node("Unsqueeze", ["t", "axis3"], ["t4"]), helper.make_node("Tile", ["t4", "repeats"], ["tiled"]),
           helper.make_node("Reshape", ["tiled", "shape"], ["waveform"])],
          [f32("mel", [1, 80, "T"])], [f32("waveform", [1, 1, "N"])],
          {"axis3": np.array([3], np.int64), "repeats": np.array([1, 1, 1, 256], np.int64), "shape": np.array([1, 1, -1], np.int64)})

    # A byte-level tiktoken vocabulary: every byte is a token.
    (root / "multilingual_zh_ja_yue_char_del.tiktoken").write_text(
        "".join(f"{base64.b64encode(bytes([b])).decode()} {b}\n" for b in range(256)), encoding="utf-8"
    )
    np.savez(root / "spk_proj.npz", weight=w(1280, 192), bias=w(1280))
    (root / "voices").mkdir(exist_ok=True)
    t = np.arange(24000) / 24000
    for k, name in enumerate(clips):
        sf.write(root / "voices" / f"{name}.wav", (0.3 * np.sin(2 * np.pi * (200 + 100 * k) * t * (1 + t))).astype(np.float32), 24000)
    (root / "voice.json").write_text(json.dumps({
        "name": "indextts-test", "engine": "indextts", "languages": ["zh_CN", "zh", "en"], "sample_rate": 22050,
        "description": "miniature IndexTTS export for tests",
        "options": {"steps": 3, "top_k": 1, "max_tokens": 40, "seed": 0},
    }), encoding="utf-8")
    return root
