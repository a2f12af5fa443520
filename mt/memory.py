"""Keep a training process's resident memory down: bound oneDNN's per-shape cache, and give freed
heap memory back to the OS (glibc malloc_trim; a no-op with other C libraries).

The cache: on CPUs, bf16 matmuls go through ideep/oneDNN, which keeps an LRU cache of computations
(primitive plus its buffers) keyed by shape, 1024 entries by default (env LRU_CACHE_CAPACITY, read
once, at the first use). Token-budget batches have a new shape almost every step, so the cache only
grows: `mt bench train` prints the heap in use (heap_in_use_mb); over 40 steps of the reference
Transformer it climbed from 284 to 541 MB with 1024 entries and stayed at 244 MB with 16.
oneDNN keeps a second cache of primitives (env ONEDNN_PRIMITIVE_CACHE_CAPACITY, also 1024); both
are bounded together (train.kernel_cache).

The heap: torch allocates every CPU tensor with malloc. glibc raises its mmap threshold to 32 MB after
the first large free, so activations of a few MB come from the heap, and token-budget batches of
ever-changing shapes fragment it: a Transformer step whose live peak is ≈ 0.96 GB drives the
process to 2–3.5 GB resident. malloc_trim(0) releases the free pages (wherever they lie in the
heap); they are faulted in again when reused, which costs time (train.trim_memory_every).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

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


KERNEL_CACHE_ENV = "LRU_CACHE_CAPACITY"  # ideep's computation cache
PRIMITIVE_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"  # oneDNN's own primitive cache


def limit_kernel_cache(entries: int) -> bool:
    """Bound ideep's and oneDNN's per-shape caches to `entries` each (0: leave the libraries' 1024).

    Must run before the process's first bf16 matmul (the libraries read the settings once); a value
    the user already exported wins. True if this call set anything."""
    changed = False
    for name in (KERNEL_CACHE_ENV, PRIMITIVE_CACHE_ENV):
        if entries > 0 and name not in os.environ:
            os.environ[name] = str(entries)
            changed = True
    return changed


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def heap_in_use_mb() -> float | None:
    """Bytes malloc has handed out and not got back (glibc ≥ 2.33 mallinfo2), in MB; None elsewhere.

    Unlike RSS this ignores free pages the heap still holds, so growth here is memory something keeps."""
    lib = _glibc()
    if lib is None or not hasattr(lib, "mallinfo2"):
        return None
    lib.mallinfo2.restype = _MallInfo2
    info = lib.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20
