"""Write inferred values the way the reference engine does: one ``<PREDICATE>.txt`` per open
predicate, tab-separated arguments then the value.

All files of one run are written into a temporary folder beside the destination and moved into
place only when every file is complete, so a failed run leaves no half-written output.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np


def format_values(names, args: np.ndarray, values: np.ndarray) -> str:
    names = np.asarray(names, dtype=object)
    lines = ["\t".join(names[row].tolist()) + f"\t{v:.6f}" for row, v in zip(args, values)]
    return "\n".join(lines) + ("\n" if lines else "")


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write one text file atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_results(directory: str | os.PathLike, model, y: np.ndarray) -> list[Path]:
    """Write ``<PREDICATE>.txt`` for every open predicate of ``model``; return the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    index = model.index
    staging = Path(tempfile.mkdtemp(prefix=".hlmrf-out.", dir=directory))
    written = []
    try:
        for name in index.predicates:
            args, cols = index.atoms(name)
            target = staging / f"{name.upper()}.txt"
            target.write_text(format_values(index.constants, args, y[cols]), encoding="utf-8")
        for f in sorted(staging.iterdir()):
            dest = directory / f.name
            os.replace(f, dest)
            written.append(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written
