"""glibc heap controls: give freed memory back to the OS, and bound the number of malloc arenas.

ONNX Runtime allocates from several threads; glibc gives each thread its own heap arena (up
to 8 per core) and keeps what was freed in them, so a long-running server's RSS creeps up
(docs/RELIABILITY.md). Both helpers are no-ops where glibc is not the C library (musl,
macOS, Windows), and report whether they did anything.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from functools import lru_cache

M_ARENA_MAX = -8  # from glibc's malloc.h


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (cached: it never changes)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def trim() -> bool:
    """Return freed heap memory to the OS (``malloc_trim(0)``); True if glibc did it."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


def limit_arenas(count: int) -> bool:
    """At most ``count`` glibc malloc arenas (``mallopt(M_ARENA_MAX)``), as ``MALLOC_ARENA_MAX``
    does; call it before threads start allocating. True if glibc accepted it."""
    libc = _glibc()
    return bool(libc is not None and count > 0 and libc.mallopt(M_ARENA_MAX, count))
