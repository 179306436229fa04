"""Publishing a run's files with :class:`hlmrf.infra.FileSet` when a folder collects the files of
several runs: :func:`carry_forward` keeps the earlier runs' files that this run does not rewrite,
and :func:`publish` writes one snapshot of a folder. This module decides nothing about contents.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Mapping

from hlmrf.infra import MANIFEST, FileSet

__all__ = ["carry_forward", "previous_files", "publish", "check_run_folder"]


def check_run_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """Refuse an output folder that holds the current working folder (``--out .``, ``--out ..``).

    A :class:`~hlmrf.infra.FileSet` replaces its folder as a whole; done to the working folder,
    that would pull it from under every process working there (shells, editors, a git checkout).
    Raises :class:`~hlmrf.errors.OutputError` naming the fix; returns the absolute path.
    """
    from hlmrf.errors import OutputError

    p = Path(os.path.realpath(path))
    try:
        cwd = Path(os.path.realpath(os.getcwd()))
    except OSError:  # the working folder is gone: nothing to protect
        return p
    if p == cwd or p in cwd.parents:
        raise OutputError(f"{option} {os.fspath(path)} is the current folder or holds it, and a run "
                          "replaces its output folder as a whole; name a subfolder (e.g. "
                          f"{option} out)", path)
    return p


def previous_files(dest: str | os.PathLike) -> list[str]:
    """The files an earlier :class:`~hlmrf.infra.FileSet` wrote into ``dest`` (its manifest)."""
    try:
        text = (Path(dest) / MANIFEST).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [line for line in text.splitlines() if line]


def carry_forward(fs: FileSet, keep: Iterable[str]) -> list[str]:
    """Add to ``fs`` the files named in ``keep`` (relative paths) that its destination holds now
    and ``fs`` does not write, as hard links (no copy), so publishing the set keeps them.

    :class:`~hlmrf.infra.FileSet` drops what an earlier run wrote and this one does not; a folder
    that collects one file per run (``masks/train.npz``, ``masks/test.npz``) needs them carried.
    Call it after the run's own files are added. Returns the names carried.
    """
    carried = []
    for rel in keep:
        src = fs.dest / rel
        if rel == MANIFEST or not src.is_file() or src.is_symlink():
            continue
        if fs.staging is None:
            raise RuntimeError("carry_forward: add the run's own files first")
        # The link lives in the set's staging folder, which a killed run's successor removes.
        link = fs.staging / f".carry-{len(carried)}"
        try:
            os.link(src, link)
        except OSError:  # a filesystem without hard links: copy
            shutil.copy2(src, link)
        fs.add_file(rel, link)
        carried.append(rel)
    return carried


def publish(dest: str | os.PathLike, files: Mapping[str, bytes | str], keep_previous: bool = True) -> list[Path]:
    """Publish ``files`` (relative path -> content) as one snapshot of ``dest``: every file of
    the set appears at once, and with ``keep_previous`` the files earlier snapshots wrote stay."""
    check_run_folder(dest)
    with FileSet(dest) as fs:
        for rel, data in files.items():
            fs.add(rel, data)
        if keep_previous:
            carry_forward(fs, [f for f in previous_files(fs.dest) if f not in files])
    return [fs.dest / rel for rel in files]
