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
