"""Writing the pipeline's outputs: mask arrays, per-question choices, the metrics report.

Every file is first written to a temporary file beside its destination; only when all of a call's
files are complete are they moved into place with ``os.replace``, so a failed run leaves no
half-written (or half-updated) set of files. This module writes; it computes nothing but the
report's layout.
"""
from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Mapping

import numpy as np

from ..clevr.metrics import PrecisionRecallReport, PRRow
from .pipeline import PipelineResult

__all__ = ["AtomicFiles", "masks_npz_bytes", "choices_json", "report_json", "report_markdown"]


class AtomicFiles:
    """Collect files, then publish them all at once: ``with AtomicFiles() as out: out.add(path, bytes)``.

    Nothing is written until the ``with`` block ends without an exception; then each file goes to
    a temporary name and, once all are written, every one is renamed into place. Folders are
    created as needed (and removed again if the run created them and failed).
    """

    def __init__(self) -> None:
        self._files: dict[Path, bytes] = {}

    def add(self, path: str | os.PathLike, data: bytes | str) -> None:
        self._files[Path(path)] = data.encode("utf-8") if isinstance(data, str) else bytes(data)

    def __enter__(self) -> "AtomicFiles":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()

    def commit(self) -> list[Path]:
        made_dirs: list[Path] = []
        temps: list[tuple[Path, Path]] = []
        try:
            for path, data in self._files.items():
                missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
                for d in reversed(missing):
                    d.mkdir()
                    made_dirs.append(d)
                tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
                with open(tmp, "wb") as f:
                    f.write(data)
                temps.append((tmp, path))
            for tmp, path in temps:
                os.replace(tmp, path)
        except BaseException:
            for tmp, _ in temps:
                if tmp.exists():
                    tmp.unlink()
            for d in reversed(made_dirs):
                try:
                    d.rmdir()
                except OSError:
                    pass
            raise
        return [p for _, p in temps]


def _npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def masks_npz_bytes(result: PipelineResult, masks: np.ndarray) -> bytes:
    """The CLEVR ``masks.npz``: uint8 masks (value / 255) and every question's scores and choices.

    Keys: ``masks`` (N, H, W) uint8; ``question_index``, ``image_index`` (N,) int64; ``parsed``
    (N,) bool; ``n_mentions``, ``n_objects`` (N,) int64 and ``scores`` float16, the row-major
    ``(mentions, objects)`` matrices one after another (``score_ptr`` (N + 1,) offsets);
    ``chosen`` int16 with ``chosen_ptr`` (N + 1,); ``referred`` int16 with ``referred_ptr``
    (an unknown reference is an empty run).
    """
    R = result.results
    nm = np.array([0 if r.scores is None else r.scores.shape[0] for r in R], np.int64)
    no = np.array([0 if r.scores is None else r.scores.shape[1] for r in R], np.int64)
    scores = [r.scores.ravel() for r in R if r.scores is not None]
    chosen = [np.asarray(r.chosen, np.int16) for r in R]
    referred = [np.asarray(r.referred or (), np.int16) for r in R]
    ptr = (lambda parts: np.r_[0, np.cumsum([len(p) for p in parts])].astype(np.int64))
    cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
    return _npz({
        "masks": masks,
        "question_index": np.array([r.question_index for r in R], np.int64),
        "image_index": np.array([r.image_index for r in R], np.int64),
        "parsed": np.array([r.parse is not None for r in R], bool),
        "n_mentions": nm, "n_objects": no,
        "scores": cat(scores, np.float16), "score_ptr": np.r_[0, np.cumsum(nm * no)].astype(np.int64),
        "chosen": cat(chosen, np.int16), "chosen_ptr": ptr(chosen),
        "referred": cat(referred, np.int16), "referred_ptr": ptr(referred),
    })


def choices_json(result: PipelineResult) -> str:
    """One JSON record per question: its mentions' and the question's chosen objects."""
    rows = []
    for r in result.results:
        rows.append({
            "question_index": r.question_index, "image_index": r.image_index, "group": r.group,
            "text": r.parse.text if r.parse is not None else None, "failure": r.failure,
            "mentions": [list(m) for m in r.mention_objects], "chosen": list(r.chosen),
            "referred": None if r.referred is None else list(r.referred),
        })
    return "{\"questions\": [\n" + ",\n".join(json.dumps(x, separators=(",", ":")) for x in rows) + "\n]}\n"


def _row(r: PRRow) -> dict:
    return {"group": r.group, "questions": r.questions, "micro_precision": r.micro_precision,
            "micro_recall": r.micro_recall, "macro_precision": r.macro_precision,
            "macro_recall": r.macro_recall}


def report_json(result: PipelineResult, report: PrecisionRecallReport, config: Mapping) -> str:
    """The metrics report as JSON: config, counts, failures, P/R rows, timings."""
    n = len(result.results)
    fails = result.failures
    doc = {
        "config": dict(config),
        "questions": n, "parsed": n - len(fails), "unparsed": len(fails),
        "failures": [{"question_index": q, "reason": why} for q, why in fails],
        "scored": report.overall.questions,
        "solver": {"converged": int(result.converged.sum()), "blocks": int(len(result.converged)),
                   "mean_iterations": float(result.solver_iterations.mean()) if len(result.solver_iterations) else 0.0},
        "overall": _row(report.overall),
        "by_group": [_row(r) for r in report.by_group],
        "by_family": [_row(r) for r in report.by_family],
        "timings_seconds": dict(result.timings),
    }
    return json.dumps(doc, indent=1) + "\n"


def report_markdown(result: PipelineResult, report: PrecisionRecallReport, config: Mapping,
                    title: str = "PSL mask report") -> str:
    """The metrics report as Markdown: config, counts, the P/R table (with families), failures."""
    n = len(result.results)
    fails = result.failures
    lines = [f"# {title}", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in config.items()]
    lines += ["", f"Questions: {n}; parsed: {n - len(fails)}; not parsed: {len(fails)}; "
              f"scored against referred objects: {report.overall.questions}.", "",
              "Chosen vs referred objects (micro: pooled counts; macro: mean per question):", "",
              report.to_markdown(families=True), ""]
    if fails:
        lines += ["## Questions the parser could not read", "", "| question | reason |", "|---:|---|"]
        lines += [f"| {q} | {why.replace('|', '/')} |" for q, why in fails[:200]]
        if len(fails) > 200:
            lines.append(f"| ... | {len(fails) - 200} more (report.json lists all) |")
        lines.append("")
    t = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    lines += [f"Timings: {t}.", ""]
    return "\n".join(lines)
