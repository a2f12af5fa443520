"""Give freed heap memory back to the OS (glibc malloc_trim; a no-op with other C libraries).

Why: torch allocates every CPU tensor with malloc. glibc raises its mmap threshold to 32 MB after
the first large free, so activations of a few MB come from the heap, and token-budget batches of
ever-changing shapes fragment it: a Transformer step whose live peak is ≈ 0.96 GB drives the
process to 2–3.5 GB resident. malloc_trim(0) releases the free pages (wherever they lie in the
heap); they are faulted in again when reused, which costs time (train.trim_memory_every).
"""

from __future__ import annotations

import ctypes
import ctypes.util

_libc: ctypes.CDLL | None | bool = False  # False: not looked up yet


def _glibc() -> ctypes.CDLL | None:
    """The C library if it has malloc_trim (glibc), else None."""
    global _libc
    if _libc is False:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = lib if hasattr(lib, "malloc_trim") else None
        except OSError:
            _libc = None
    return _libc


def trim() -> bool:
    """Release the free pages of malloc's heaps to the OS; True if anything was released."""
    lib = _glibc()
    return bool(lib.malloc_trim(0)) if lib is not None else False
