"""The one place ONNX Runtime sessions are created, configured as the article asks."""

from __future__ import annotations

import functools
import logging
from importlib import resources
from pathlib import Path

import numpy as np

from . import __version__  # noqa: F401  (sets ORT_DISABLE_TELEMETRY before import)
import onnxruntime as ort

_LOGGER = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def shared_cpu_arena() -> None:
    """Register one CPU memory arena in ONNX Runtime's environment, for every session to use.

    By default each session grows its own arena to the largest working set it ever ran and
    keeps it: four sessions (two per voice) kept the sum of their peaks. One shared arena
    only holds the peak of what runs at once, which ``--max-workers`` bounds. The default
    power-of-two growth is kept: growing by exactly what is requested fragmented the arena
    and ended larger (docs/RELIABILITY.md). Registered once per process (ONNX Runtime's
    environment is process-wide; a second registration would fail), hence the cache.
    """
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    # 0 / -1: no size limit and ONNX Runtime's defaults for the rest; 0 is kNextPowerOfTwo.
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, 0, -1, -1))


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
    # Memory patterns are planned and kept per distinct set of input shapes; every sentence
    # has its own length, so they only pile up in the arena (docs/RELIABILITY.md).
    options.enable_mem_pattern = False
    shared_cpu_arena()
    options.add_session_config_entry("session.use_env_allocators", "1")
    _LOGGER.debug("Loading ONNX model %s (threads=%s)", path if isinstance(path, Path) else "from memory", threads)
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def packaged_session(name: str, path: Path | None = None, threads: int = 1) -> ort.InferenceSession:
    """A session on the package's model ``data/<name>``, or on ``path`` where one is given
    (the training tools and tests load their own files the same way).

    Raises FileNotFoundError where the file is missing, so a caller can run without it."""
    source = path or resources.files("wyoming_indextts") / "data" / name
    with resources.as_file(source) as file:
        if not Path(file).is_file():
            raise FileNotFoundError(file)
        return create_session(Path(file), threads=threads)


@functools.lru_cache(maxsize=1)
def _arena_probe() -> ort.InferenceSession:
    """A one-node session (Identity, shipped as package data so that nothing imports ``onnx`` at
    run time for it) on the shared arena: a run of it is how the arena is asked to shrink."""
    model = (resources.files("wyoming_indextts") / "data" / "arena_probe.onnx").read_bytes()
    return create_session(model)


def release_arena() -> None:
    """Give the shared arena's unused chunks back to the OS (blocking: call it from a worker).

    The arena keeps the largest working set it has seen (both workers at full stretch); an
    idle server does not need it. Chunks in use by a concurrent run are left alone.
    """
    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    _arena_probe().run(None, {"x": np.zeros(1, np.float32)}, options)
