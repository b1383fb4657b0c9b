"""The one place ONNX Runtime sessions are created, configured as the article asks."""

from __future__ import annotations

import logging
from pathlib import Path

from . import __version__  # noqa: F401  (sets ORT_DISABLE_TELEMETRY before import)
import onnxruntime as ort

_LOGGER = logging.getLogger(__name__)


def create_session(path: Path | bytes, threads: int = 1) -> ort.InferenceSession:
    """Open one model on the CPU with full graph optimisation and ``threads`` intra-op threads.

    Inter-op parallelism is off because these graphs are sequential.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # Idle ORT threads normally spin waiting for work; with several workers' sessions
    # sharing the cores that spinning steals CPU from the run that has work.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    _LOGGER.debug("Loading ONNX model %s (threads=%s)", path if isinstance(path, Path) else "from memory", threads)
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
