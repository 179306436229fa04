"""A dependency-free progress bar for the command-line tools (never used by library code).

It writes to stderr, redraws in place on a terminal and prints a line every few seconds otherwise
(logs in CI stay short).
"""
from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "grounding") as bar: bar.update(n)``; ``total=None`` counts up.

    Nothing is drawn for work that ends before ``min_interval`` (0.2 s on a terminal, 5 s in logs).
    """

    def __init__(self, total: int | None, desc: str, stream=None, min_interval: float = 0.2,
                 enabled: bool = True):
        self.total = total
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval if self.tty else 5.0
        self.start = time.perf_counter()
        self._last = self.start
        self._drawn = False
        self.postfix = ""

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        self.n += n
        if postfix is not None:
            self.postfix = postfix
        now = time.perf_counter()
        if now - self._last >= self.min_interval:
            self._last = now
            self._draw(final=False)

    def set(self, n: int, postfix: str | None = None) -> None:
        self.update(n - self.n, postfix)

    def _draw(self, final: bool) -> None:
        if not self.enabled:
            return
        self._drawn = True
        elapsed = time.perf_counter() - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(1.0, self.n / self.total)
            filled = int(frac * 24)
            bar = "#" * filled + "-" * (24 - filled)
            text = f"{self.desc}: [{bar}] {self.n}/{self.total} {rate:,.0f}/s {elapsed:.1f}s"
        else:
            text = f"{self.desc}: {self.n} {rate:,.0f}/s {elapsed:.1f}s"
        if self.postfix:
            text += f" {self.postfix}"
        if self.tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn:
            self._draw(final=True)
        self.enabled = False
