"""Give freed heap memory back to the operating system between the stages of a run.

Grounding allocates and frees many mid-sized arrays (a few MB each, part by part). glibc's
allocator serves those from its heap and keeps the freed pages resident, so the process's
resident set after grounding stays at grounding's high-water mark even though the model is much
smaller, and the solver's arrays then come on top of it (at N=300 in the acquaintances benchmark,
about 120 MiB held but unused). :func:`release_free_memory` asks the allocator to return those
pages (``malloc_trim(0)``); on other C libraries and platforms it does nothing. It frees nothing
that is in use, so it is safe to call from a library at a stage boundary.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # glibc only; musl and others have none
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the allocator's free pages to the OS; True when the platform supports it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
