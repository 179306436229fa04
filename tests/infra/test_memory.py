"""release_free_memory: returns the allocator's free pages on glibc, and is a no-op elsewhere."""
from __future__ import annotations

import platform
import sys

import numpy as np
import pytest

from hlmrf.infra import memory


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's")
def test_freed_heap_pages_go_back_to_the_os():
    # Many 1 MiB arrays freed out of order fragment glibc's heap once its mmap threshold has grown.
    big = np.ones(16 * 2**20 // 8)  # freeing a 16 MiB mmapped block raises the mmap threshold to it
    del big
    keep, junk = [], []
    for i in range(300):
        (keep if i % 50 == 0 else junk).append(np.ones(2**20 // 8))
    junk.clear()
    before = _rss_mib()
    assert memory.release_free_memory() is True
    assert _rss_mib() < before - 100  # most of the ~294 freed MiB left the resident set
    assert all(float(k[0]) == 1.0 for k in keep)  # what is in use is untouched


def test_without_malloc_trim_it_does_nothing(monkeypatch):
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.release_free_memory() is False


SMAPS = """\
7f0000000000-7f0000100000 r--p 00000000 08:01 42                         /lib/libllvmlite.so
Size:               1024 kB
Rss:                 512 kB
Shared_Dirty:          0 kB
Private_Clean:       512 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
7f0000100000-7f0000500000 r-xp 00100000 08:01 42                         /lib/libllvmlite.so
Rss:                4096 kB
Shared_Dirty:          0 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
7f0000500000-7f0000600000 r--p 00500000 08:01 42                         /lib/libllvmlite.so
Rss:                1024 kB
Shared_Dirty:          0 kB
Private_Dirty:       128 kB
Anonymous:           128 kB
7f0000600000-7f0000610000 rw-p 00600000 08:01 42                         /lib/libllvmlite.so
Rss:                  64 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
7f0000610000-7f0000620000 r-xp 00000000 08:01 43                         /lib/other lib.so
Rss:                  64 kB
Private_Dirty:         0 kB
7f0000620000-7f0000630000 r-xp 00000000 00:00 0 
Rss:                  64 kB
Private_Dirty:         0 kB
7f0000630000-7f0000640000 r-xp 00000000 08:01 44                         /lib/libllvmlite.so (deleted)
Rss:                  64 kB
Shared_Dirty:         64 kB
Private_Dirty:         0 kB
"""


def test_only_clean_readonly_mappings_of_the_named_file_are_chosen():
    """Text and read-only data of the file: chosen. Relocated read-only data (dirty pages of its
    own), a writable mapping, another file, an anonymous mapping and a mapping with shared dirty
    pages: left alone (dropping a dirty private page would lose what was written to it)."""
    got = memory.clean_readonly_mappings(SMAPS, "libllvmlite")
    assert got == [(0x7f0000000000, 0x7f0000100000), (0x7f0000100000, 0x7f0000500000)]
    assert memory.clean_readonly_mappings(SMAPS, "other lib") == [(0x7f0000610000, 0x7f0000620000)]
    assert memory.clean_readonly_mappings(SMAPS, "absent") == []
    assert memory.clean_readonly_mappings(SMAPS, ("absent", "other lib")) == [(0x7f0000610000, 0x7f0000620000)]


def _mapped_rss_kib(name: str) -> int:
    total, hit = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
                hit = len(head) >= 6 and name in line
            elif hit and head[0] == "Rss:":
                total += int(head[1])
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_a_library_s_pages_leave_the_resident_set_and_it_still_runs():
    """numpy's own extension module: its clean read-only pages are dropped, and numpy runs on
    (its pages are faulted in again from the file)."""
    name = "_multiarray_umath"
    np.linalg.norm(np.arange(1000.0))
    before = _mapped_rss_kib(name)
    assert before > 0
    assert memory.release_library_pages(name) > 0
    assert _mapped_rss_kib(name) < before
    x = np.arange(1000.0)
    assert float(np.sort(x[::-1])[0]) == 0.0 and float(x @ x) == 332833500.0


def test_without_madvise_nothing_is_released(monkeypatch):
    monkeypatch.setattr(memory, "_madvise", lambda: None)
    assert memory.release_library_pages("libc") == 0
