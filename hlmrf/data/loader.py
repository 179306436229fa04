"""Load a facts directory in the naming convention of the public psl-examples data.

``<predicate>_obs.txt|tsv`` (observed atoms), ``<predicate>_targets.txt|tsv`` (atoms to infer) and
``<predicate>_truth.txt|tsv`` (ground truth for evaluation); tab-separated arguments, an optional
last column holds the value (1.0 when absent); predicate names match case-insensitively. Every
problem names the file and line. This module only reads; writing results is
:mod:`hlmrf.data.writer`.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Mapping

import numpy as np

from hlmrf.data.arities import ArityMismatchError, columns_text
from hlmrf.data.keys import row_keys
from hlmrf.data.store import FactStore
from hlmrf.errors import DataError

_FILE_RE = re.compile(r"^(?P<pred>.+?)_(?P<kind>obs|observations|targets|target|truth)\.(txt|tsv|csv)$",
                      re.IGNORECASE)
_KIND = {"obs": "obs", "observations": "obs", "targets": "targets", "target": "targets",
         "truth": "truth"}

EXCERPT = 200
"""Characters of a constant or line quoted in an error message; the rest is cropped."""

# C0/C1 control characters but tab, and the invisible format characters (zero-width space,
# joiners, direction marks, word joiner, BOM) that make two constants look equal.
_BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e"
                        "\u2028\u2029\u2060-\u2064\ufeff]")


def excerpt(text, limit: int = EXCERPT, quote: bool = True) -> str:
    """``repr`` of ``text`` (or the text itself), cropped to about ``limit`` characters."""
    text = str(text)
    more = len(text) - limit
    shown = text[:limit] if more > 0 else text
    shown = repr(shown) if quote else shown
    return shown + (f"... ({more} more characters)" if more > 0 else "")


def _kind_of(path: str) -> str | None:
    """Why ``path`` is not a regular file we can read, or None when it is one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ("is a symbolic link to a missing file" if os.path.islink(path)
                else "does not exist")
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    except ValueError:
        return "is not a valid path (it holds a NUL character)"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a pipe, socket or device)"
    return None


def read_text_file(path: str | os.PathLike, what: str = "file") -> str:
    """The UTF-8 text of a regular file, without a byte-order mark.

    Not a regular file, unreadable, or not UTF-8: a :class:`DataError` with the file (and the
    line of the first undecodable byte).
    """
    path = str(path)
    why = _kind_of(path)
    if why is not None:
        raise DataError(f"{why}; the {what} must be a readable text file", path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", path) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1 - (skip if line == 1 else 0)
        raise DataError(f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at column {col}: "
                        f"{exc.reason}); save the file as UTF-8", path, line) from None


def _split_lines(text: str, path: str) -> list[str]:
    """Lines split at newlines only (not at form feeds or U+2028, which ``splitlines`` takes);
    a control or zero-width character anywhere is an error at its line."""
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    flat = text.replace("\r\n", "\n")
    for m in _BAD_CHARS.finditer(flat):  # usually none; a final "\r" passes the line check
        line = flat.count("\n", 0, m.start()) + 1
        check_constant_text(lines[line - 1], path, line)
    return lines


def check_constant_text(text: str, path: str | None, line: int | None = None,
                        where: str = "") -> None:
    """Raise a :class:`DataError` if ``text`` holds a control or zero-width character."""
    m = _BAD_CHARS.search(text)
    if m is None:
        return
    ch = m.group()
    name = "a NUL byte" if ch == "\x00" else f"the invisible character U+{ord(ch):04X}"
    start = max(0, m.start() - 40)
    raise DataError(f"{where}has {name} at column {m.start() + 1} "
                    f"(near {excerpt(text[start:m.start() + 40], 100)}); remove it: constants "
                    "must not hold control or zero-width characters", path, line)


def read_rows(path: str | os.PathLike, arity: int | None, with_values: bool):
    """Read one tab-separated facts file.

    Returns ``(rows, values, line_numbers)``: argument strings, values (1.0 when absent) and the
    1-based line of each row. With ``arity=None`` a last column is a value when it is numeric on
    every line and there is more than one column.
    """
    path = str(path)
    text = read_text_file(path, "facts file")
    lines = _split_lines(text, path)
    if _plain(text):
        fast = _rows_plain(lines, arity, with_values)
        if fast is not None:
            return fast
    return _rows_of_lines(lines, arity, with_values, path)


def _plain(text: str) -> bool:
    """Whether no line of ``text`` is blank and no column needs stripping or is empty: then
    :func:`_rows_plain` reads it with one split per line (the common case: a file written by a
    program). Anything else, errors included, goes through :func:`_rows_of_lines`."""
    return not (" " in text or "\r" in text or "\n\n" in text or "\t\t" in text or "\t\n" in text
                or "\n\t" in text or text.startswith(("\n", "\t")) or text.rstrip("\n").endswith("\t"))


def _rows_plain(lines: list[str], arity: int | None, with_values: bool):
    """:func:`read_rows` of a :func:`_plain` file, the values parsed as one array; None when a line
    or value is not as expected (the line-by-line reader then finds and reports it)."""
    if not lines:
        return None
    rows = [ln.split("\t") for ln in lines]
    widths = set(map(len, rows))
    if len(widths) != 1:
        return None
    k = widths.pop()
    values = None
    if with_values and k > 1 and (arity is None or k == arity + 1):
        try:
            values = np.array([r[-1] for r in rows], dtype=np.float64)
        except ValueError:  # a bad value (reported at its line), or a last column of names
            return None
        if not ((values >= 0.0) & (values <= 1.0)).all():
            return None
    if values is not None:
        args = [r[:-1] for r in rows]
    elif arity is None or k == arity:
        args, values = rows, np.ones(len(rows))
    else:
        return None
    return args, values, list(range(1, len(rows) + 1))


def _rows_of_lines(lines: list[str], arity: int | None, with_values: bool, path: str):
    """:func:`read_rows` line by line: blank lines, stripped columns, per-line errors."""
    rows: list[list[str]] = []
    linenos: list[int] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cols = line.rstrip("\r\n").split("\t")
        rows.append([c.strip() for c in cols])
        linenos.append(i)
    if not rows:
        return [], np.zeros(0), []
    if arity is None:
        ncols = {len(r) for r in rows}
        if len(ncols) != 1:
            first_bad = next(linenos[i] for i, r in enumerate(rows) if len(r) != len(rows[0]))
            raise DataError(f"has {sorted(ncols)} columns on different lines; "
                            f"every line needs the same number of tab-separated columns", path,
                            first_bad)
        k = len(rows[0])
        arity = k - 1 if (with_values and k > 1 and all(_isfloat(r[-1]) for r in rows)) else k
    values = np.ones(len(rows))
    args: list[list[str]] = []
    for j, (r, ln) in enumerate(zip(rows, linenos)):
        if len(r) == arity:
            args.append(r)
        elif with_values and len(r) == arity + 1:
            try:
                v = float(r[-1])
            except ValueError:
                raise DataError(f"value {excerpt(r[-1])} is not a number; the last column must be a truth "
                                "value in [0, 1]", path, ln) from None
            if not 0.0 <= v <= 1.0:
                raise DataError(f"value {excerpt(r[-1], quote=False)} is outside [0, 1]; truth values must lie in [0, 1]",
                                path, ln)
            values[j] = v
            args.append(r[:-1])
        else:
            want = f"{arity} or {arity + 1}" if with_values else f"{arity}"
            hint = " (columns must be separated by tabs)" if len(r) == 1 and " " in r[0] else ""
            message = f"has {len(r)} columns, expected {want} for a predicate of arity {arity}{hint}"
            if not hint and all(len(x) == len(r) for x in rows):
                # The whole file has another width: the arity it was read with (usually the
                # rules') disagrees with it, not one malformed line.
                raise ArityMismatchError(
                    message, path, ln, arity=arity,
                    data_says=f"its facts in {path}:{ln} have {columns_text(len(r), with_values)}")
            raise DataError(message, path, ln)
        if any(c == "" for c in args[-1]):
            raise DataError("has an empty argument", path, ln)
    return args, values, linenos


def _isfloat(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def find_fact_files(directory: str | os.PathLike) -> dict[str, dict[str, Path]]:
    """Map upper-cased predicate -> {'obs'|'targets'|'truth': path} for a facts directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError("is not a directory; pass the folder holding <predicate>_obs.txt, "
                        "<predicate>_targets.txt and <predicate>_truth.txt files", str(directory))
    out: dict[str, dict[str, Path]] = {}
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise DataError(f"cannot list the facts folder: {exc.strerror}; fix its permissions",
                        str(directory)) from None
    for entry in entries:
        m = _FILE_RE.match(entry.name)
        if not m:
            continue
        why = _kind_of(str(entry))
        if why is not None:
            raise DataError(f"{why}, but its name says it holds facts; make it a text file "
                            "or rename it", str(entry))
        kind = _KIND[m.group("kind").lower()]
        pred = m.group("pred").upper()
        if kind in out.setdefault(pred, {}):
            raise DataError(f"both {out[pred][kind].name} and {entry.name} hold {kind} atoms of "
                            f"{pred}; keep one", str(directory))
        out[pred][kind] = entry
    return out


def load_facts(directory: str | os.PathLike, arities: Mapping[str, int] | None = None,
               store: FactStore | None = None) -> FactStore:
    """Load a facts directory into a :class:`FactStore`.

    Parameters
    ----------
    directory : folder with ``<predicate>_{obs,targets,truth}.{txt,tsv}`` files.
    arities : upper-cased predicate name -> arity, usually from the rules
        (``{k: a for k, (_, a, _) in rule_arities(program).items()}``, see
        :mod:`hlmrf.data.arities`); it decides whether a last numeric column is a value or an
        argument. Predicates not listed are inferred. A file whose every row disagrees with a
        listed arity raises :class:`~hlmrf.data.arities.ArityMismatchError` (a ``DataError``).
    store : add to this store instead of a new one.
    """
    store = store if store is not None else FactStore()
    arities = {k.upper(): v for k, v in (arities or {}).items()}
    files = find_fact_files(directory)
    for pred, kinds in files.items():
        arity = arities.get(pred)
        first_path = None
        for kind in ("obs", "targets", "truth"):
            path = kinds.get(kind)
            if path is None:
                continue
            try:
                rows, values, linenos = read_rows(path, arity, with_values=kind != "targets")
            except ArityMismatchError as exc:
                exc.predicate = pred
                raise
            if not rows:
                continue
            if arity is None:
                arity = len(rows[0])
                first_path = path
            elif len(rows[0]) != arity:
                src = first_path.name if first_path else "the rules"
                raise DataError(f"has {len(rows[0])} arguments but {src} gives {pred} arity {arity}",
                                str(path), linenos[0])
            name = pred
            codes = store.constants.intern_rows(rows).reshape(-1, arity)
            _check_duplicates(codes, linenos, str(path))
            store.declare(name, arity)
            store.add_codes(name, kind, codes, values)
        p = store.get(pred)
        if p is not None and len(p.obs_args) and len(p.target_args):
            _check_disjoint(p, store, kinds)
    return store


def _check_duplicates(codes: np.ndarray, linenos: list[int], path: str) -> None:
    if len(codes) < 2:
        return
    keys = np.sort(row_keys(codes))  # one int64 per atom: a 1-d sort, not np.unique(axis=0)
    if (keys[1:] == keys[:-1]).any():
        order = np.lexsort(codes.T[::-1])
        srt = codes[order]
        dup = np.flatnonzero((srt[1:] == srt[:-1]).all(axis=1))[0]
        a, b = sorted((order[dup], order[dup + 1]))
        raise DataError(f"repeats the atom of line {linenos[a]}; list each atom once", path,
                        linenos[b])


def _check_disjoint(p, store: FactStore, kinds) -> None:
    keys = np.sort(row_keys(np.concatenate([p.obs_args, p.target_args])))
    if (keys[1:] == keys[:-1]).any():
        obs_set = {tuple(r) for r in p.obs_args.tolist()}
        for i, r in enumerate(p.target_args.tolist()):
            if tuple(r) in obs_set:
                atom = f"{p.name}({', '.join(store.constants.names[c] for c in r)})"
                raise DataError(f"target {atom} is also observed in {kinds['obs'].name}; an atom is "
                                "either observed or a target, not both", str(kinds["targets"]))
