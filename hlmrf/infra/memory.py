"""Give freed heap memory back to the operating system between the stages of a run.

Grounding allocates and frees many mid-sized arrays (a few MB each, part by part). glibc's
allocator serves those from its heap and keeps the freed pages resident, so the process's
resident set after grounding stays at grounding's high-water mark even though the model is much
smaller, and the solver's arrays then come on top of it (at N=300 in the acquaintances benchmark,
about 120 MiB held but unused). :func:`release_free_memory` asks the allocator to return those
pages (``malloc_trim(0)``); on other C libraries and platforms it does nothing. It frees nothing
that is in use, so it is safe to call from a library at a stage boundary.

:func:`release_library_pages` does the same for a shared library's code: numba needs LLVM
(``libllvmlite.so``, 170 MB) only to link its compiled functions, but linking leaves some 65 MiB
of LLVM's code resident in the process (acquaintances N=300: a fifth of the run's peak). Those
pages are clean copies of the file, which the kernel would drop first under memory pressure and
fault in again from the page cache if they were run again; the function drops them from this
process's resident set once linking is done.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
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


@lru_cache(maxsize=1)
def _madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        advise = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    advise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    advise.restype = ctypes.c_int
    return advise


MADV_DONTNEED = 4


def clean_readonly_mappings(smaps: str, names: str | tuple[str, ...]) -> list[tuple[int, int]]:
    """The address ranges, in ``/proc/<pid>/smaps`` text, of the mappings of a file whose name
    contains one of ``names`` that are not writable and hold no page of their own (no private or
    shared dirty page, nothing anonymous): every resident page of such a mapping is the file's as
    read."""
    names = (names,) if isinstance(names, str) else tuple(names)
    found, cur, dirty = [], None, 0

    def close():
        if cur is not None and dirty == 0:
            found.append(cur)

    for line in smaps.splitlines():
        head = line.split()
        if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
            close()
            cur, dirty = None, 0
            path = line.split(None, 5)[5].strip() if len(head) >= 6 else ""
            if any(n in os.path.basename(path) for n in names) and "w" not in head[1]:
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = (lo, hi)
        elif cur is not None and head and head[0] in ("Private_Dirty:", "Anonymous:", "Shared_Dirty:"):
            dirty += int(head[1])
    close()
    return found


def release_free_memory() -> bool:
    """Return the allocator's free pages to the OS; True when the platform supports it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def release_library_pages(names: str | tuple[str, ...]) -> int:
    """Drop the resident pages of loaded shared libraries' read-only mappings (those that hold
    only the file's own pages, :func:`clean_readonly_mappings`) from this process's resident set;
    returns the bytes of address space advised, 0 where unsupported. Nothing is lost: a page
    touched again is faulted in from the page cache, as after the kernel's own reclaim. For
    libraries that stay loaded (an unloaded one's address range could be reused between the
    reading of ``smaps`` and the advice)."""
    advise = _madvise()
    if advise is None:
        return 0
    try:
        with open("/proc/self/smaps") as f:
            ranges = clean_readonly_mappings(f.read(), names)
    except OSError:
        return 0
    done = 0
    for lo, hi in ranges:
        if advise(lo, hi - lo, MADV_DONTNEED) == 0:
            done += hi - lo
    return done
