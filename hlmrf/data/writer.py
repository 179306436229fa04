"""Write inferred values the way the reference engine does: one ``<PREDICATE>.txt`` per open
predicate, tab-separated arguments then the value.

The files of one run are published together by :class:`hlmrf.infra.publish.FileSet`: they are
written into a staging folder beside the destination, which then takes its place in one step, so a
failed or killed run leaves the previous output whole (never a new ``CANCER.txt`` beside an old
``SMOKES.txt``). Files in the folder that hlmrf did not write are kept; outputs of an earlier run
that this run does not write are removed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hlmrf.infra.publish import FileSet, atomic_write


def format_values(names, args: np.ndarray, values: np.ndarray) -> str:
    """One ``arg1<TAB>...<TAB>value`` line per row of ``args``.

    Values are written in full precision, as the reference engine does: the shortest text that
    reads back as exactly the same float (``repr``), so a check of a 1e-5 constraint tolerance on
    the written file sees what the solver returned. ``-0.0`` is written ``0.0``.
    """
    names = np.asarray(names, dtype=object)
    lines = ["\t".join(names[row].tolist()) + "\t" + repr(float(v) + 0.0)
             for row, v in zip(args, values)]
    return "\n".join(lines) + ("\n" if lines else "")


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write one text file atomically (see :func:`hlmrf.infra.publish.atomic_write`)."""
    atomic_write(path, text)


def result_files(model, y: np.ndarray) -> dict[str, str]:
    """``{"<PREDICATE>.txt": text}`` for every open predicate of ``model``."""
    index = model.index
    out = {}
    for name in index.predicates:
        args, cols = index.atoms(name)
        out[f"{name.upper()}.txt"] = format_values(index.constants, args, y[cols])
    return out


def write_results(directory: str | os.PathLike, model, y: np.ndarray,
                  extra: dict[str, str] | None = None) -> list[Path]:
    """Publish ``<PREDICATE>.txt`` for every open predicate of ``model`` (and the ``extra``
    files, relative path -> text) into ``directory`` in one step; return the result paths."""
    files = result_files(model, y)
    clash = sorted(set(extra or {}) & set(files))
    if clash:
        from hlmrf.errors import OutputError

        raise OutputError(f"{', '.join(clash)} would be both a result file and another output; "
                          "name the other output differently", directory)
    fs = FileSet(directory)
    try:
        paths = [fs.add(name, text) for name, text in sorted(files.items())]
        for name, text in (extra or {}).items():
            fs.add(name, text)
        fs.commit()
    except BaseException:
        fs.discard()
        raise
    return paths
