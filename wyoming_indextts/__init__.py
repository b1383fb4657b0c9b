"""wyoming-indextts: Chinese/English speech synthesis for Home Assistant on ONNX Runtime."""

import os

# onnxruntime reads this when it is first imported; every module that imports
# onnxruntime imports this package first, so telemetry is off everywhere.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
