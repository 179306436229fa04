import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def committer(dest, tag, n, rounds, *flags, **kw):
    return subprocess.Popen([sys.executable, str(HERE / "_committer.py"), str(dest), tag, str(n),
                             str(rounds), *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def snapshot(dest: Path) -> dict:
    """Relative path -> text of every file under ``dest``."""
    out = {}
    for root, _, files in os.walk(dest):
        for f in files:
            p = Path(root) / f
            out[p.relative_to(dest).as_posix()] = p.read_text()
    return out


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)
