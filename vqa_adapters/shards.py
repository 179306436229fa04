"""Sharded mask runs: ``vqa-masks --shard K/N`` and ``vqa-masks merge``.

A shard is a deterministic contiguous 1/N of the question file, in file order
(:func:`shard_range`); its run writes the usual complete CLEVR output for those questions plus
``shard.json``, a manifest naming the shard, the inputs (SHA-256 of the scene and question files),
the settings and what the report needs that the files do not keep (each question's solver
iterations and convergence, the timings). The manifest is published in the same
:class:`hlmrf.infra.FileSet` as the other files, so a folder holding it is a finished shard, and a
rerun (a resubmitted Slurm array, a retried Ray task) leaves it alone (:func:`finished`).

:func:`merge_files` checks that the folders are the N shards of one run (same inputs, same settings,
each shard once, one ``--store`` layout) and writes what the unsharded run writes: ``masks.npz``
with the same arrays (the masks, or with ``--store objects`` only the chosen objects and render
parameters), ``choices.json`` byte for byte, ``report.json``/``report.md`` the same except the timings (summed
over the shards; two unsharded runs differ there too), and the first previews. The merge is exact
because a question's scores do not depend on which questions share its chunk under the
per-question solvers (``numpy-batch``, ``torch``); the ``numpy`` solver (one ADMM on a chunk's
union) is refused with ``--shard``. CLEVR only: a Sort-of-CLEVR split is one array file per split.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from hlmrf.errors import DataError, SettingsError

__all__ = ["SHARD_FILE", "parse_shard", "shard_range", "input_digests", "shard_manifest", "finished",
           "merge_files"]

SHARD_FILE = "shard.json"
FORMAT = 1
_CHOICES_HEAD, _CHOICES_TAIL = "{\"questions\": [\n", "\n]}\n"


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``0 <= K < N`` (K counts from 0, as Slurm array task ids)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if m is None or not int(m.group(1)) < int(m.group(2)):
        raise SettingsError(f"--shard {str(text)[:40]!r}: expected K/N with 0 <= K < N, e.g. --shard 0/4 "
                            "for the first of 4 shards (Slurm: --shard $SLURM_ARRAY_TASK_ID/4)")
    return int(m.group(1)), int(m.group(2))


def shard_range(total: int, k: int, n: int) -> tuple[int, int]:
    """The questions ``[start, stop)`` of shard ``k`` of ``n`` out of ``total``: contiguous, in file
    order, sizes differing by at most one."""
    return total * k // n, total * (k + 1) // n


def input_digests(**paths) -> dict:
    """``{name: {"file": name, "sha256": ...}}`` of input files (the run's identity, not its paths:
    array tasks may see the data under different mounts)."""
    out = {}
    for name, path in paths.items():
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        out[name] = {"file": Path(path).name, "sha256": h.hexdigest()}
    return out


def shard_manifest(k: int, n: int, total: int, inputs: Mapping, config: Mapping, previews: int,
                   result) -> str:
    """The ``shard.json`` of shard ``k``/``n`` of a run over ``total`` questions."""
    start, stop = shard_range(total, k, n)
    doc = {"format": FORMAT, "shard": k, "of": n, "questions": {"total": total, "start": start, "stop": stop},
           "inputs": dict(inputs), "config": dict(config), "previews": previews,
           "solver": {"iterations": [int(v) for v in result.solver_iterations],
                      "converged": [bool(v) for v in result.converged]},
           "timings_seconds": dict(result.timings)}
    return json.dumps(doc, indent=1) + "\n"


def _read(folder: Path) -> dict | None:
    try:
        doc = json.loads((folder / SHARD_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"unreadable {SHARD_FILE} ({exc}); remove the folder and rerun its shard", folder) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError(f"{SHARD_FILE} is not a vqa-masks shard manifest of format {FORMAT}; rerun "
                        "its shard with this version", folder)
    return doc


def _identity(doc: Mapping) -> tuple:
    config = {**doc["config"], "store": _store(doc)}  # a shard from before --store: arrays
    return (doc["of"], doc["questions"]["total"], json.dumps(doc["inputs"], sort_keys=True),
            json.dumps(config, sort_keys=True), doc["previews"])


def finished(out: str | Path, k: int, n: int, inputs: Mapping, config: Mapping, previews: int) -> bool:
    """Whether ``out`` already holds shard ``k``/``n`` of this run (then a rerun skips it).

    Raises :class:`~hlmrf.errors.SettingsError` when it holds a shard of another run or another
    shard: it is left alone unless ``--force``.
    """
    doc = _read(Path(out))
    if doc is None:
        return False
    ours = {"of": n, "questions": doc["questions"], "inputs": dict(inputs), "config": dict(config),
            "previews": previews}
    if doc["shard"] == k and _identity(doc) == _identity(ours):
        return True
    raise SettingsError(f"{out} holds shard {doc['shard']}/{doc['of']} of another run or with other "
                        "settings; give each shard its own --out, or add --force to replace it")


def _check_shards(dirs: Sequence[Path]) -> list[tuple[Path, dict]]:
    """The folders as the shards of one run, in shard order; a clear error naming the folder and
    the fix otherwise (nothing is written)."""
    if not dirs:
        raise SettingsError("merge needs the shard folders: vqa-masks merge DIR... --out DIR")
    docs = []
    for d in dirs:
        if not d.is_dir():
            raise DataError("not a folder; give the --out folders of the vqa-masks --shard runs", d)
        doc = _read(d)
        if doc is None:
            raise DataError(f"no {SHARD_FILE}: not a finished vqa-masks --shard run; rerun its shard "
                            f"(vqa-masks ... --shard K/N --out {d})", d)
        docs.append((d, doc))
    first_dir, first = docs[0]
    for d, doc in docs[1:]:
        a, b = _store(doc), _store(first)
        if a != b:
            raise DataError(f"written with --store {a}, {first_dir} with --store {b}: one masks.npz "
                            f"cannot hold both layouts; rerun this shard with --store {b} --force (or "
                            f"every shard with the same --store) and merge again", d)
        for what, key in (("shard count", "of"), ("inputs", "inputs"), ("settings", "config"),
                          ("question count", "questions")):
            a, b = (doc[key]["total"], first[key]["total"]) if key == "questions" else (doc[key], first[key])
            if key == "config":  # a shard from before --store holds arrays
                a, b = {**a, "store": _store(doc)}, {**b, "store": _store(first)}
            if a != b:
                raise DataError(f"its {what} differ from those of {first_dir} (another run or other "
                                "settings); merge the shards of one run, or rerun this shard with the "
                                "same inputs and options", d)
        if doc["previews"] != first["previews"]:
            raise DataError(f"its --previews/--images differ from those of {first_dir}; rerun this "
                            "shard with the same options", d)
    n = first["of"]
    by_k: dict[int, Path] = {}
    for d, doc in docs:
        if doc["shard"] in by_k:
            raise DataError(f"shard {doc['shard']}/{n} twice: here and in {by_k[doc['shard']]}; "
                            "give each shard once", d)
        by_k[doc["shard"]] = d
    missing = [k for k in range(n) if k not in by_k]
    if missing:
        listing = ", ".join(f"{k}/{n}" for k in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise DataError(f"shard(s) {listing} missing: run vqa-masks ... --shard K/{n} for them and "
                        "merge again", first_dir)
    order = sorted(docs, key=lambda x: x[1]["shard"])
    for d, doc in order:
        for name in ("masks.npz", "choices.json", "report.json", "report.md"):
            if not (d / name).is_file():
                raise DataError(f"{name} missing beside {SHARD_FILE}; rerun this shard with --force", d)
    return order


def _store(doc: Mapping) -> str:
    """The ``--store`` of a shard (manifests from before the option hold arrays)."""
    return doc["config"].get("store", "arrays")


class _Counts:
    """What :func:`vqa_adapters.psl.io.report_json` and ``report_markdown`` read from a
    :class:`~vqa_adapters.psl.pipeline.PipelineResult` besides the report: the number of
    questions, the failures, the solver's per-question record and the timings."""

    def __init__(self, rows, iterations, converged, timings):
        self.results = rows
        self.failures = [(r["question_index"], r["failure"]) for r in rows if r["failure"] is not None]
        self.solver_iterations = np.asarray(iterations, np.int64)
        self.converged = np.asarray(converged, bool)
        self.timings = timings


def _merge_npz(paths: Sequence[Path], store: str) -> dict[str, np.ndarray]:
    from vqa_adapters.psl.io import RUN_KEYS

    loaded = [np.load(p, allow_pickle=False) for p in paths]
    for p, z in zip(paths, loaded):
        if ("masks" in z.files) != (store == "arrays"):
            raise DataError(f"its shard.json says --store {store} but it "
                            f"{'has no' if store == 'arrays' else 'has a'} mask array; rerun this "
                            "shard with --force", p.parent)
    for p, z in zip(paths[1:], loaded[1:]):
        if set(z.files) != set(loaded[0].files):
            raise DataError(f"its masks.npz holds other arrays than {paths[0]} (a shard written by "
                            "another version of vqa-masks); rerun this shard with --force", p.parent)
    out = {}
    for key in loaded[0].files:  # masks_npz_bytes' order
        parts = [z[key] for z in loaded]
        if key in RUN_KEYS:  # one value for the run: the shards agree (same settings), keep it
            for p, v in zip(paths[1:], parts[1:]):
                if not np.array_equal(v, parts[0]):
                    raise DataError(f"its {key} {v} differs from {parts[0]} in {paths[0].parent}; "
                                    "rerun this shard with the same options", p.parent)
            out[key] = parts[0]
        elif key.endswith("_ptr"):  # (N + 1,) offsets: each shard's, shifted past the earlier shards
            shifted, base = [np.zeros(1, parts[0].dtype)], 0
            for p in parts:
                shifted.append(p[1:] + base)
                base += int(p[-1])
            out[key] = np.concatenate(shifted)
        else:
            out[key] = np.concatenate(parts)
    return out


def merge_files(dirs: Sequence[str | Path]) -> tuple[dict[str, bytes | str], dict]:
    """The files of the unsharded run, from its shards' folders: ``({name: content}, config)``."""
    from vqa_adapters.clevr.metrics import precision_recall_report
    from vqa_adapters.psl.io import npz_bytes, report_json, report_markdown

    order = _check_shards([Path(d) for d in dirs])
    docs = [doc for _, doc in order]
    parts, rows = [], []
    for d, _ in order:
        text = (d / "choices.json").read_text(encoding="utf-8")
        if not (text.startswith(_CHOICES_HEAD) and text.endswith(_CHOICES_TAIL)):
            raise DataError("choices.json is not a vqa-masks choices file; rerun this shard with --force", d)
        body = text[len(_CHOICES_HEAD):-len(_CHOICES_TAIL)]
        if body:
            parts.append(body)
            rows.extend(json.loads(line.rstrip(",")) for line in body.split("\n"))
    files: dict = {"choices.json": _CHOICES_HEAD + ",\n".join(parts) + _CHOICES_TAIL}
    files["masks.npz"] = npz_bytes(_merge_npz([d / "masks.npz" for d, _ in order], _store(docs[0])))
    timings: dict[str, float] = {}
    for doc in docs:
        for k, v in doc["timings_seconds"].items():
            timings[k] = timings.get(k, 0.0) + v
    counts = _Counts(rows, [i for doc in docs for i in doc["solver"]["iterations"]],
                     [c for doc in docs for c in doc["solver"]["converged"]], timings)
    report = precision_recall_report(
        (r["chosen"], r["referred"], None if r["group"] is None else int(r["group"]))
        for r in rows if r["failure"] is None and r["referred"] is not None)
    config = docs[0]["config"]
    files["report.json"] = report_json(counts, report, config)
    files["report.md"] = report_markdown(counts, report, config)
    position = {r["question_index"]: i for i, r in enumerate(rows)}
    previews = sorted((position.get(int(p.stem[1:]), len(rows)), p) for d, _ in order
                      for p in (d / "previews").glob("q*.png") if p.stem[1:].isdigit())
    for _, p in previews[:docs[0]["previews"]]:
        files[f"previews/{p.name}"] = p.read_bytes()
    return files, config
