"""glibc malloc settings that keep training's resident memory flat (Linux; no-ops elsewhere).

Experimental knobs (environment, read once): MT_MMAP_THRESHOLD (bytes; 0 = glibc's dynamic
threshold) and MT_TRIM_EVERY (steps between malloc_trim calls; 0 = never).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_MMAP_THRESHOLD = -3  # mallopt parameter numbers from glibc's malloc.h
_libc: ctypes.CDLL | None | bool = False


def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (has malloc_trim), else None."""
    global _libc
    if _libc is False:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = lib if hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else None
        except OSError:
            _libc = None
    return _libc


def tune_allocator() -> bool:
    """Fix malloc's mmap threshold (off by default); True if a setting was applied."""
    lib, threshold = _glibc(), int(os.environ.get("MT_MMAP_THRESHOLD", "0"))
    if lib is None or not threshold:
        return False
    return bool(lib.mallopt(M_MMAP_THRESHOLD, threshold))


def trim() -> None:
    """Give the free pages inside malloc's heaps back to the OS."""
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)


def after_step(step: int) -> None:
    """Called after every training step: trims every MT_TRIM_EVERY steps."""
    every = int(os.environ.get("MT_TRIM_EVERY", "0"))
    if every and step % every == 0:
        trim()
