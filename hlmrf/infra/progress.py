"""The progress display of the command-line tools (never used by library code), over tqdm.

On a terminal it is a tqdm bar on stderr. When the stream is not a terminal (CI logs, a pipe) tqdm
is not used: a plain line every 5 seconds, and a last one at the end if any was written, keeps logs
short and free of carriage returns. ``enabled=False`` (``--quiet``) writes nothing. The count is
kept here in every case, so callers and tests can read ``n`` whether or not anything is drawn.
"""
from __future__ import annotations

import sys
import time
from typing import IO

__all__ = ["Progress"]

#: Seconds between plain lines when the stream is not a terminal.
LOG_INTERVAL = 5.0

_now = time.perf_counter  # the clock (tests replace it)


class Progress:
    """``with Progress(total, "grounding") as bar: bar.update(n)``; ``total=None`` counts up.

    Parameters
    ----------
    total : the count at which the work is done, or ``None`` when unknown.
    desc : the label in front of the bar.
    stream : where to draw (default ``sys.stderr``).
    min_interval : seconds between redraws on a terminal; nothing is drawn for work that ends
        before it (in logs the interval is :data:`LOG_INTERVAL`).
    enabled : ``False`` draws nothing (``--quiet``).
    """

    def __init__(self, total: int | None, desc: str, stream: IO[str] | None = None,
                 min_interval: float = 0.2, enabled: bool = True):
        self.total = total
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval if self.tty else LOG_INTERVAL
        self.start = _now()
        self._last = self.start
        self._drawn = False
        self.postfix = ""
        self._bar = None
        if enabled and self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, file=self.stream, mininterval=self.min_interval,
                             delay=self.min_interval, leave=True, dynamic_ncols=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        """Advance the count by ``n``; ``postfix`` replaces the text after the bar."""
        self.n += n
        if postfix is not None:
            self.postfix = postfix
        if not self.enabled:
            return
        if self._bar is not None:
            if postfix is not None:
                self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)
            return
        now = _now()
        if now - self._last >= self.min_interval:
            self._last = now
            self._line()

    def set(self, n: int, postfix: str | None = None) -> None:
        """Set the count to ``n``."""
        self.update(n - self.n, postfix)

    def _line(self) -> None:
        self._drawn = True
        elapsed = _now() - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        text = f"{self.desc}: {count} {rate:,.0f}/s {elapsed:.1f}s"
        if self.postfix:
            text += f" {self.postfix}"
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Finish the display (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self._drawn:
            self._line()
        self.enabled = False
