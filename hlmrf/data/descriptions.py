"""Load PSL's data descriptions: the 2.x ``.data`` file and the JSON/YAML model config.

``.data`` (YAML)::

    predicates:
      Knows/2: open
      Lived/2: closed
    observations:
      Knows: ../data/knows_obs.txt
      Lived: ../data/lived_obs.txt
    targets:
      Knows: ../data/knows_targets.txt
    truth:
      Knows: ../data/knows_truth.txt

and the config (JSON, comments allowed, or YAML) with ``rules`` (a list of rule strings or the path
of a ``.psl`` file), ``predicates`` (``"Knows/2": {"observations": [...], "targets": [...],
"truth": [...]}``, each list holding paths or inline rows, optionally split by phase as
``{"learn": [...], "infer": [...]}``) and optional ``options``. Paths are relative to the
description's own folder. Problems name the file (and key). This module reads files; the parsed
facts go into a :class:`~hlmrf.data.store.FactStore`.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hlmrf.data.arities import ArityMismatchError, columns_text, rule_arities, rules_own_arities
from hlmrf.data.loader import _kind_of, check_constant_text, excerpt, read_rows, read_text_file
from hlmrf.data.store import FactStore
from hlmrf.errors import DataError, MissingDependencyError

_KINDS = {"observations": "obs", "targets": "targets", "truth": "truth"}
_DATA_SECTIONS = ("predicates", "observations", "targets", "truth")
_PRED_KEYS = ("observations", "targets", "truth", "evaluations", "options")


def _yaml():
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "reading .data and YAML config files needs PyYAML, which is not installed; "
            "install it with: pip install pyyaml") from None
    return yaml


def _read_text(path: Path, what: str = "file") -> str:
    return read_text_file(path, what)


def _split_name(key: str, where: str) -> tuple[str, int | None]:
    """``"Knows/2"`` -> ``("Knows", 2)``; ``"Knows"`` -> ``("Knows", None)``."""
    m = re.fullmatch(r"\s*([A-Za-z_$][A-Za-z0-9_$]*)\s*(?:/\s*(\d+))?\s*", str(key))
    if m is None:
        raise DataError(f"{excerpt(key)} is not a predicate name (write Name or Name/arity)", where)
    return m.group(1), (int(m.group(2)) if m.group(2) else None)


class _Builder:
    """Collects predicates and their facts, then fills a store (arities from rules or files)."""

    def __init__(self, source: str, arities: Mapping[str, int], store: FactStore | None,
                 rule_spans: Mapping[str, object] | None = None):
        self.source = source
        self.rule_spans = dict(rule_spans or {})
        self.arities = {k.upper(): v for k, v in arities.items()}
        self.from_rules = dict(self.arities)  # a disagreement with these is blamed on the rules
        self.names: dict[str, str] = {}
        self.open: dict[str, bool] = {}
        self.store = store if store is not None else FactStore()

    def declare(self, key: str, where: str, open_: bool | None = None) -> str:
        name, arity = _split_name(key, where)
        up = name.upper()
        if arity is not None:
            known = self.arities.get(up)
            if known is not None and known != arity:
                # Both sides are typed by hand: blame the declaration, and show the rule.
                at = self.rule_spans.get(up)
                raise DataError(f"{name}/{arity} is declared with arity {arity}, but the rules use "
                                f"{name} with {known} arguments" + (f" (at {at})" if at else "") +
                                "; make the two agree", where)
            self.arities[up] = arity
        self.names.setdefault(up, name)
        if open_ is not None:
            self.open[up] = open_
        return up

    def add_file(self, up: str, kind: str, path: Path, where: str) -> None:
        why = _kind_of(str(path))
        if why == "does not exist":
            raise DataError(f"{where} names {path}, which does not exist (paths are relative to "
                            f"{self.source})", str(path))
        if why is not None:
            raise DataError(f"{why}, but {where} in {self.source} names it as a facts file; "
                            "name a text file", str(path))
        try:
            rows, values, linenos = read_rows(path, self.arities.get(up), with_values=kind != "targets")
        except ArityMismatchError as exc:
            exc.predicate = up
            raise
        self._add(up, kind, rows, values, str(path))

    def add_rows(self, up: str, kind: str, rows: list, where: str) -> None:
        arity = self.arities.get(up)
        args, vals = [], []
        for r in rows:
            r = list(r) if isinstance(r, (list, tuple)) else [r]
            for x in r:
                if isinstance(x, (list, tuple, dict)) or x is None:
                    raise DataError(f"{where}: row {excerpt(r)} holds {excerpt(x)}; each entry "
                                    "must be a constant (a string or number)", self.source)
                if isinstance(x, str):
                    check_constant_text(x, self.source, where=f"{where}: constant {excerpt(x, 60)} ")
            k = arity if arity is not None else (
                len(r) - 1 if kind != "targets" and len(r) > 1 and isinstance(r[-1], (int, float))
                and not isinstance(r[-1], bool) else len(r))
            if len(r) == k:
                args.append([str(x) for x in r]), vals.append(1.0)
            elif len(r) == k + 1 and kind != "targets":
                try:
                    v = float(r[-1])
                except (TypeError, ValueError):
                    raise DataError(f"{where}: value {excerpt(r[-1])} of {excerpt(r)} is not a number",
                                    self.source) from None
                if not 0.0 <= v <= 1.0:
                    raise DataError(f"{where}: value {v} of {excerpt(r)} is outside [0, 1]", self.source)
                args.append([str(x) for x in r[:-1]]), vals.append(v)
            else:
                message = (f"{where}: row {excerpt(r)} has {len(r)} entries; {self.names[up]} takes {k} "
                           "arguments" + ("" if kind == "targets" else " and an optional value"))
                if self.from_rules.get(up) == k and all(
                        len(x) == len(r) if isinstance(x, (list, tuple)) else len(r) == 1 for x in rows):
                    raise ArityMismatchError(
                        message, self.source, arity=k, predicate=up,
                        data_says=f"the rows of {where} in {self.source} have "
                                  f"{columns_text(len(r), kind != 'targets')}")
                raise DataError(message, self.source)
            arity = k
        self._add(up, kind, args, np.asarray(vals, float), self.source)

    def _add(self, up, kind, rows, values, where) -> None:
        if not rows:
            if up in self.arities:
                self.store.declare(self.names[up], self.arities[up])
            return
        arity = len(rows[0])
        if self.arities.get(up, arity) != arity:
            message = f"has {arity} arguments per row, but {self.names[up]} takes {self.arities[up]}"
            if self.from_rules.get(up) == self.arities[up]:
                raise ArityMismatchError(message, where, arity=self.arities[up], predicate=up,
                                         data_says=f"{where} has {arity} argument(s) per row")
            raise DataError(message, where)
        self.arities[up] = arity
        codes = self.store.constants.intern_rows(rows).reshape(-1, arity)
        self.store.declare(self.names[up], arity)
        self.store.add_codes(self.names[up], kind, codes, values)

    def finish(self) -> FactStore:
        for up, is_open in self.open.items():
            p = self.store.get(up)
            if p is None:
                if up not in self.arities:
                    continue
                p = self.store.declare(self.names[up], self.arities[up])
            if not is_open and len(p.target_args):
                raise DataError(f"{p.name} is declared closed but has targets; declare it open "
                                "(`open`) or drop its targets", self.source)
            p.declared_open = is_open or None
        for p in self.store.predicates.values():
            if len(p.obs_args) and len(p.target_args):
                both = np.concatenate([p.obs_args, p.target_args])
                if len(np.unique(both, axis=0)) < len(both):
                    raise DataError(f"a target of {p.name} is also observed; an atom is either "
                                    "observed or a target, not both", self.source)
        return self.store


def _section(doc: dict, key: str, source) -> dict:
    """``doc[key]`` as a mapping (absent or null: empty); another type is a DataError."""
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DataError(f"`{key}` must be a mapping, not {type(value).__name__} "
                        f"({excerpt(value, 80)})", str(source))
    return value


def _paths(value, where: str, source=None) -> list:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    if isinstance(value, list):
        return value
    raise DataError(f"{where} must be a path or a list of paths, not {type(value).__name__}",
                    None if source is None else str(source))


def load_data_file(path: str | os.PathLike, arities: Mapping[str, int] | None = None,
                   store: FactStore | None = None, rule_spans: Mapping | None = None) -> FactStore:
    """Load a PSL 2.x ``.data`` description (YAML) into a :class:`FactStore`.

    Parameters
    ----------
    path : the ``.data`` file; the file paths inside are relative to its folder.
    arities : upper-cased predicate -> arity, usually from the rules; ``Name/arity`` keys also set it.
    rule_spans : upper-cased predicate -> where the rules use it, named when a declaration
        disagrees with the rules.
    """
    path = Path(path)
    try:
        doc = _yaml().safe_load(_read_text(path))
    except Exception as exc:  # yaml.YAMLError; the module is imported lazily
        if isinstance(exc, (DataError, MissingDependencyError)):
            raise
        raise DataError(f"is not valid YAML: {exc}", str(path)) from None
    if not isinstance(doc, dict):
        raise DataError("must be a YAML mapping with sections predicates, observations, targets, truth",
                        str(path))
    unknown = sorted(set(doc) - set(_DATA_SECTIONS))
    if unknown:
        raise DataError(f"unknown section(s) {', '.join(map(str, unknown))}; a .data file has "
                        f"{', '.join(_DATA_SECTIONS)}", str(path))
    b = _Builder(str(path), arities or {}, store, rule_spans)
    for key, state in _section(doc, "predicates", path).items():
        where = f"{path}: predicates: {key}"
        s = str(state).strip().lower()
        if s not in ("open", "closed"):
            raise DataError(f"predicates: {excerpt(key, 80)} is {excerpt(state, 80)}; write `open` or "
                            "`closed`", str(path))
        b.declare(str(key), where, s == "open")
    base = path.parent
    for section, kind in _KINDS.items():
        for key, files in _section(doc, section, path).items():
            where = f"{section}: {key}"
            up = b.declare(str(key), where)
            for f in _paths(files, where, path):
                b.add_file(up, kind, base / str(f), where)
    return b.finish()


def _strip_json_comments(text: str) -> str:
    """Drop ``//``, ``#`` and ``/* */`` comments outside strings (psl-examples' configs use them)."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i) or ch == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def read_config(path: str | os.PathLike) -> dict:
    """Parse a JSON (comments allowed) or YAML config into a dict."""
    path = Path(path)
    text = _read_text(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            doc = _yaml().safe_load(text)
        except Exception as exc:
            if isinstance(exc, MissingDependencyError):
                raise
            raise DataError(f"is not valid YAML: {exc}", str(path)) from None
    else:
        try:
            doc = json.loads(_strip_json_comments(text))
        except json.JSONDecodeError as exc:
            raise DataError(f"is not valid JSON: {exc.msg}", str(path), exc.lineno) from None
    if not isinstance(doc, dict):
        raise DataError("must be a mapping with `rules` and `predicates`", str(path))
    return doc


def load_config(path: str | os.PathLike, phase: str = "infer"):
    """Load a JSON/YAML model config: ``(program, store, options)``.

    ``rules`` is a list of rule strings or the path of a rule file; each predicate's
    ``observations``/``targets``/``truth`` hold paths or inline rows, or a ``{"learn": ...,
    "infer": ...}`` split of which ``phase`` is used. ``options`` is returned as given.
    """
    from hlmrf.language.parser import parse_rules

    path = Path(path)
    doc = read_config(path)
    known = {"rules", "predicates", "options", "infer", "learn"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise DataError(f"unknown key(s) {', '.join(unknown)}; a config has "
                        f"{', '.join(sorted(known))}", str(path))
    rules = doc.get("rules")
    if isinstance(rules, str):
        rule_path = path.parent / rules
        program = parse_rules(_read_text(rule_path), str(rule_path))
    elif isinstance(rules, list) and all(isinstance(r, str) for r in rules):
        # One rule per string; keep line numbers meaningful by joining them one per line.
        program = parse_rules("\n".join(r.replace("\n", " ") for r in rules), f"{path}:rules")
    else:
        raise DataError("`rules` must be a list of rule strings or the path of a .psl file", str(path))
    with rules_own_arities(program):
        store = _config_store(path, doc, program, phase)
    for up, (name, arity, _) in rule_arities(program).items():
        if store.get(up) is not None:
            store.get(up).name = name
    options = dict(_section(doc, "options", path))
    options.update(_section(doc, phase, path))
    return program, store, options


def _config_store(path: Path, doc: dict, program, phase: str) -> FactStore:
    used = rule_arities(program)
    b = _Builder(str(path), {k: a for k, (_, a, _) in used.items()}, None,
                 {k: span for k, (_, _, span) in used.items()})
    preds = doc.get("predicates") or {}
    if not isinstance(preds, dict):
        raise DataError("`predicates` must map `Name/arity` to its data", str(path))
    for key, spec in preds.items():
        up = b.declare(str(key), f"{path}: predicates: {key}")
        spec = spec or {}
        if not isinstance(spec, dict):
            raise DataError(f"predicates: {key} must be a mapping with observations/targets/truth",
                            str(path))
        bad = sorted(set(spec) - set(_PRED_KEYS))
        if bad:
            raise DataError(f"predicates: {key} has unsupported key(s) {', '.join(bad)} "
                            f"(supported: {', '.join(_PRED_KEYS)})", str(path))
        for section, kind in _KINDS.items():
            value = spec.get(section)
            where = f"predicates: {key}: {section}"
            if isinstance(value, dict):
                if phase not in value:
                    raise DataError(f"{where} is split by phase ({', '.join(value)}) but has no "
                                    f"{phase!r} entry", str(path))
                value = value[phase]
            files, rows = [], []
            for item in _paths(value, where, path):
                (rows if isinstance(item, (list, tuple)) else files).append(item)
            for f in files:
                b.add_file(up, kind, path.parent / str(f), where)
            if rows:
                b.add_rows(up, kind, rows, where)
    return b.finish()


def load_inputs(first: str | os.PathLike, second: str | os.PathLike | None = None,
                phase: str = "infer"):
    """What ``hlmrf-infer`` and ``hlmrf-learn`` accept: ``(RULES, FACTS_DIR)``,
    ``(RULES, X.data)`` or ``(CONFIG,)``; ``phase`` picks a config's ``learn`` or ``infer`` split.

    Returns ``(program, store, options)``; ``options`` is empty except for a config's.
    """
    from hlmrf.language.parser import parse_rules

    if second is None:
        p = Path(first)
        if p.suffix.lower() not in (".json", ".yaml", ".yml"):
            raise DataError("one argument must be a JSON or YAML config (.json, .yaml); otherwise "
                            "pass the rule file and then a facts directory or a .data file", str(p))
        return load_config(p, phase)
    rules_path = Path(first)
    program = parse_rules(_read_text(rules_path), str(rules_path))
    return program, load_data(program, second), {}


def load_data(program, second: str | os.PathLike) -> FactStore:
    """The facts of ``program`` from a facts directory or a PSL 2.x ``.data`` file."""
    used = rule_arities(program)
    arities = {k: a for k, (_, a, _) in used.items()}
    second = Path(second)
    if second.is_dir():
        from hlmrf.data.loader import find_fact_files, load_facts

        with rules_own_arities(program):
            store = load_facts(second, arities)
        files = find_fact_files(second)
        for key, (name, arity, _) in used.items():
            if store.get(key) is None and key in files:
                store.declare(key, arity)
    elif second.suffix.lower() in (".data", ".yaml", ".yml"):
        with rules_own_arities(program):
            store = load_data_file(second, arities,
                                   rule_spans={k: span for k, (_, _, span) in used.items()})
    else:
        raise DataError("is neither a facts directory nor a .data file", str(second))
    for key, (name, _, _) in used.items():
        if store.get(key) is not None:
            store.get(key).name = name
    return store
