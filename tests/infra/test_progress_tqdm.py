"""Progress over tqdm: a bar on a terminal, short plain lines in logs, nothing when disabled."""
from __future__ import annotations

import io

import pytest

from hlmrf.infra import progress
from hlmrf.infra.progress import Progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    """A clock that the test advances by hand."""
    t = [100.0]
    monkeypatch.setattr(progress, "_now", lambda: t[0])
    return t


def test_a_terminal_gets_a_tqdm_bar_redrawn_in_place():
    s = FakeTTY()
    with Progress(10, "admm", stream=s, min_interval=0) as bar:
        for i in range(10):
            bar.update(1, postfix=f"loss {i}")
        assert bar._bar is not None and type(bar._bar).__module__.startswith("tqdm")
    out = s.getvalue()
    assert "\r" in out and out.endswith("\n")
    last = out.rstrip("\n").split("\r")[-1]
    assert last.startswith("admm: 100%") and "10/10" in last and "loss 9" in last
    assert bar.n == 10


def test_a_terminal_shows_nothing_for_work_shorter_than_the_interval():
    s = FakeTTY()
    with Progress(10, "admm", stream=s, min_interval=60) as bar:
        bar.update(3)
        bar.set(7, postfix="primal 1e-3")
    assert s.getvalue() == ""
    assert (bar.n, bar.postfix) == (7, "primal 1e-3")


def test_a_log_gets_a_plain_line_every_few_seconds_and_a_last_one(clock):
    s = io.StringIO()  # not a terminal
    with Progress(100, "psl masks", stream=s) as bar:
        assert bar._bar is None  # tqdm is not used
        bar.update(10)
        clock[0] += 1.0
        bar.update(10)  # within the interval: nothing
        assert s.getvalue() == ""
        clock[0] += progress.LOG_INTERVAL
        bar.update(10, postfix="chunk 3")
        clock[0] += 1.0
        bar.update(70)
    lines = s.getvalue().splitlines()
    assert "\r" not in s.getvalue() and "\x1b" not in s.getvalue()
    assert len(lines) == 2
    assert lines[0].startswith("psl masks: 30/100 ") and lines[0].endswith("chunk 3")
    assert lines[1].startswith("psl masks: 100/100 ")


def test_a_short_run_in_a_log_writes_nothing(clock):
    s = io.StringIO()
    with Progress(None, "sort-of-clevr", stream=s) as bar:
        bar.update(5)
    assert s.getvalue() == "" and bar.n == 5


@pytest.mark.parametrize("stream", [FakeTTY, io.StringIO])
def test_disabled_writes_nothing_but_still_counts(stream, clock):
    s = stream()
    with Progress(4, "learning", stream=s, min_interval=0, enabled=False) as bar:
        for _ in range(4):
            clock[0] += 10
            bar.update(1)
    assert s.getvalue() == "" and bar.n == 4 and bar._bar is None


def test_close_is_idempotent():
    s = FakeTTY()
    bar = Progress(2, "x", stream=s, min_interval=0)
    bar.update(2)
    bar.close()
    text = s.getvalue()
    bar.close()
    assert s.getvalue() == text
