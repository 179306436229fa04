"""The pipeline's output files as bytes: mask arrays, per-question choices, the metrics report.

This module lays out the files and reads ``masks.npz`` back (either layout: the rendered masks, or
only the chosen objects and render parameters, :func:`read_masks_npz`); publishing them (all of a
run's files at once, or none) is :class:`hlmrf.infra.FileSet`'s business, and
:func:`carry_forward` keeps the files of earlier runs that a run does not rewrite (the other
splits' masks in a Sort-of-CLEVR ``masks`` folder).
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple

import numpy as np

from ..clevr.metrics import PrecisionRecallReport, PRRow
from ..outputs import carry_forward
from .facts import ObjectFacts
from .pipeline import PipelineResult, mask_weights, render_question_mask

__all__ = ["npz_bytes", "masks_npz_bytes", "masks_npz_streamed", "StreamedArray", "geometry_hash", "check_scene", "STORES", "StoredMasks", "read_masks_npz", "render_stored_mask",
           "choices_json", "report_json", "report_markdown", "carry_forward"]


class StreamedArray(NamedTuple):
    """An array :func:`npz_bytes` writes as its row blocks come (in order along the first axis),
    so the deflating can run while the rest is still being computed."""

    shape: tuple
    dtype: np.dtype
    blocks: Iterable[np.ndarray]


def npz_bytes(arrays: Mapping[str, "np.ndarray | StreamedArray"]) -> bytes:
    """A deflated ``.npz`` of ``arrays`` in memory, as ``np.savez_compressed`` writes but at zlib
    level 1: the masks are mostly zeros, so level 1 deflates 2,000 masks of 128x128 in 0.11 s
    instead of 0.25 s (level 6) for a file 1.3x larger (4.1 MB against 3.2 MB). A
    :class:`StreamedArray` gives the same bytes as the whole array would."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, a in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                if isinstance(a, StreamedArray):
                    _write_streamed(f, a)
                else:
                    np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=False)
    return buf.getvalue()


def _write_streamed(f, a: StreamedArray) -> None:
    dtype = np.dtype(a.dtype)
    np.lib.format.write_array_header_1_0(
        f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(a.shape)})
    rows = 0
    for block in a.blocks:
        block = np.ascontiguousarray(block, dtype)
        if block.shape[1:] != tuple(a.shape[1:]):
            raise ValueError(f"a block of shape {block.shape} in an array of shape {a.shape}")
        f.write(block.data)  # zlib deflates without holding the GIL
        rows += len(block)
    if rows != a.shape[0]:
        raise ValueError(f"{rows} rows written of an array of {a.shape[0]}")


def masks_npz_streamed(result: PipelineResult, specs, size: tuple[int, int], facts_of=None):
    """``(masks, masks_npz_bytes(...))`` of the ``arrays`` layout with the masks rendered on this
    thread window by window while another thread deflates the windows already done (zlib lets go
    of the GIL): about the time of the slower of the two instead of their sum. The same bytes as
    rendering first and then calling :func:`masks_npz_bytes`."""
    import queue
    import threading

    from .masks import render_masks_into

    W, H = size
    out = np.zeros((len(specs), H, W), np.uint8)
    done: queue.SimpleQueue = queue.SimpleQueue()  # unbounded: the windows are views of ``out``
    box: dict = {"ended": False}

    def windows():  # not iter(done.get, None): that compares each array with None by ==
        while (w := done.get()) is not None:
            yield w
        box["ended"] = True

    def deflate():
        try:
            box["data"] = masks_npz_bytes(result, StreamedArray(out.shape, out.dtype, windows()), size, facts_of)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc
            while not box["ended"] and done.get() is not None:  # take the rest: the join returns
                pass

    worker = threading.Thread(target=deflate, name="masks.npz deflate", daemon=True)
    worker.start()
    try:
        for s, e in render_masks_into(out, specs, size):
            done.put(out[s:e])
    finally:
        done.put(None)
        worker.join()
    if "error" in box:
        raise box["error"]
    return out, box["data"]


STORES = ("arrays", "objects")
"""The two layouts of the CLEVR ``masks.npz``: ``arrays`` holds the rendered masks, ``objects``
only what renders them (:func:`read_masks_npz`, :func:`render_stored_mask`)."""


def geometry_hash(facts) -> int:
    """A 64-bit digest of what a scene contributes to a mask: its objects' pixel centres and blob
    radii and the image size. Stored per question (``scene_hash``), it tells a reader given
    another scene file than the run's from the right one."""
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    h.update(np.ascontiguousarray(facts.centres, np.float64).tobytes())
    h.update(np.ascontiguousarray(facts.radii, np.float64).tobytes())
    h.update(np.asarray(facts.image_size, np.int64).tobytes())
    return int.from_bytes(h.digest(), "little")


def check_scene(stored: "StoredMasks", row: int, facts, question_index: int, image_index: int) -> None:
    """A :class:`~hlmrf.errors.DataError` when row ``row`` of ``stored`` was rendered from another
    scene than ``facts`` (its ``scene_hash`` differs); nothing for a file without hashes."""
    if stored.scene_hash is None or int(stored.scene_hash[row]) == geometry_hash(facts):
        return
    from hlmrf.errors import DataError

    raise DataError(f"question {question_index}: scene {image_index} is not the one vqa-masks rendered "
                    "its mask from (its objects' positions or sizes differ): give the scene file the "
                    "masks were made with", stored.path)


def masks_npz_bytes(result: PipelineResult, masks: np.ndarray | None, size: tuple[int, int],
                    facts_of=None) -> bytes:
    """The CLEVR ``masks.npz``: every question's scores and choices, the render parameters and, in
    the ``arrays`` layout (``masks`` given, an array or a :class:`StreamedArray`), the uint8 masks
    (value / 255).

    Keys: ``masks`` (N, H, W) uint8 (``arrays`` only); ``question_index``, ``image_index`` (N,)
    int64; ``parsed`` (N,) bool; ``n_mentions``, ``n_objects`` (N,) int64 and ``scores`` float16,
    the row-major ``(mentions, objects)`` matrices one after another (``score_ptr`` (N + 1,)
    offsets); ``chosen`` int16 with ``chosen_ptr`` (N + 1,); ``referred`` int16 with
    ``referred_ptr`` (an unknown reference is an empty run). Render parameters: ``weights``
    float32, one per ``chosen`` entry (its blob's peak, 1 unless ``--weighted``); ``mask_size``
    int64 (width, height); ``weighted`` bool; ``sigma_per_radius`` float64; ``store`` the layout's
    name. With the scene file, they rebuild every mask bit for bit (:func:`render_stored_mask`).
    With ``facts_of`` (a question result's scene facts), ``scene_hash`` uint64 (N,): each
    question's scene's :func:`geometry_hash`, which readers check against the scenes they get.
    """
    from .masks import SIGMA_PER_RADIUS

    R = result.results
    nm = np.array([0 if r.scores is None else r.scores.shape[0] for r in R], np.int64)
    no = np.array([0 if r.scores is None else r.scores.shape[1] for r in R], np.int64)
    scores = [r.scores.ravel() for r in R if r.scores is not None]
    chosen = [np.asarray(r.chosen, np.int16) for r in R]
    referred = [np.asarray(r.referred or (), np.int16) for r in R]
    weights = [mask_weights(r, result.settings.weighted) for r in R]
    ptr = (lambda parts: np.r_[0, np.cumsum([len(p) for p in parts])].astype(np.int64))
    cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
    arrays = {} if masks is None else {"masks": masks}
    arrays.update({
        "question_index": np.array([r.question_index for r in R], np.int64),
        "image_index": np.array([r.image_index for r in R], np.int64),
        "parsed": np.array([r.parse is not None for r in R], bool),
        "n_mentions": nm, "n_objects": no,
        "scores": cat(scores, np.float16), "score_ptr": np.r_[0, np.cumsum(nm * no)].astype(np.int64),
        "chosen": cat(chosen, np.int16), "chosen_ptr": ptr(chosen),
        "referred": cat(referred, np.int16), "referred_ptr": ptr(referred),
        "weights": cat(weights, np.float32),
        "mask_size": np.array(size, np.int64), "weighted": np.array(result.settings.weighted),
        "sigma_per_radius": np.array(SIGMA_PER_RADIUS, np.float64),
        "store": np.array("objects" if masks is None else "arrays"),
    })
    if facts_of is not None:
        hashes: dict[int, int] = {}
        for r in R:
            if r.image_index not in hashes:
                hashes[r.image_index] = geometry_hash(facts_of(r))
        arrays["scene_hash"] = np.array([hashes[r.image_index] for r in R], np.uint64)
    return npz_bytes(arrays)


#: Keys of ``masks.npz`` that hold one value for the whole run (not one entry per question).
RUN_KEYS = ("mask_size", "weighted", "sigma_per_radius", "store")


@dataclass(frozen=True)
class StoredMasks:
    """A CLEVR ``masks.npz`` as read back: ``masks`` (``arrays`` layout; None for ``objects``) and
    what renders each question's mask from its scene (:func:`render_stored_mask`)."""

    path: str
    store: str
    question_index: np.ndarray
    image_index: np.ndarray
    chosen: np.ndarray
    chosen_ptr: np.ndarray
    weights: np.ndarray | None
    """None only in an ``arrays`` file written before the render parameters were stored."""
    size: tuple[int, int]
    """(width, height) of the masks."""
    weighted: bool | None
    masks: np.ndarray | None = None
    scene_hash: np.ndarray | None = None
    """Each row's scene's :func:`geometry_hash`; None in files written before it was stored."""

    def __len__(self) -> int:
        return len(self.question_index)

    def objects(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ``i``'s chosen objects and their blobs' weights (1 in a file from before weights
        were stored)."""
        a, b = int(self.chosen_ptr[i]), int(self.chosen_ptr[i + 1])
        weights = self.weights[a:b] if self.weights is not None else np.ones(b - a, np.float32)
        return self.chosen[a:b], weights


def read_masks_npz(path: str | os.PathLike, load_masks: bool = True) -> StoredMasks:
    """Read a CLEVR ``masks.npz`` of either layout (``load_masks=False`` skips an ``arrays`` file's
    mask array). A file that is not one, or an ``objects`` file without its render parameters or
    with another blob width, is a :class:`~hlmrf.errors.DataError` naming it."""
    from hlmrf.errors import DataError

    from .masks import SIGMA_PER_RADIUS

    p = os.fspath(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            get = (lambda k: z[k] if k in keys else None)
            qidx, iidx, chosen, cptr = (z[k] for k in ("question_index", "image_index", "chosen",
                                                       "chosen_ptr"))
            store = str(z["store"]) if "store" in keys else ("arrays" if "masks" in keys else None)
            masks = z["masks"] if load_masks and "masks" in keys else None
            weights, size, weighted, sigma, scene_hash = (get(k) for k in (
                "weights", "mask_size", "weighted", "sigma_per_radius", "scene_hash"))
            if size is None and "masks" in keys:
                shape = masks.shape if masks is not None else z["masks"].shape
                size = (shape[2], shape[1])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"not a vqa-masks masks.npz: {exc}", p) from None
    if store not in STORES:
        raise DataError(f"not a vqa-masks masks.npz: no masks array and no render parameters "
                        f"(store {store!r})", p)
    if store == "objects":
        if weights is None or size is None or weighted is None or sigma is None:
            raise DataError("a masks.npz of --store objects without its render parameters "
                            "(weights, mask_size, weighted, sigma_per_radius); rerun vqa-masks", p)
        if float(sigma) != SIGMA_PER_RADIUS:
            raise DataError(f"written with blobs of sigma {float(sigma):g} x radius, this version draws "
                            f"{SIGMA_PER_RADIUS:g} x radius: its masks cannot be rebuilt as written; "
                            "rerun vqa-masks (or read a --store arrays file)", p)
    if scene_hash is not None and scene_hash.shape != qidx.shape:
        raise DataError(f"scene_hash has {scene_hash.shape} entries for {len(qidx)} questions; rerun vqa-masks", p)
    return StoredMasks(p, store, qidx, iidx, chosen, cptr, weights,
                       (int(size[0]), int(size[1])), None if weighted is None else bool(weighted), masks,
                       scene_hash)


def render_stored_mask(stored: StoredMasks, i: int, facts: ObjectFacts, dtype: str = "uint8") -> np.ndarray:
    """Row ``i``'s mask ``(height, width)`` from its stored objects and its scene's ``facts``,
    equal bit for bit to the mask the ``arrays`` layout stores (both are
    :func:`~vqa_adapters.psl.pipeline.render_question_mask`'s spec and rasteriser)."""
    chosen, weights = stored.objects(i)
    return render_question_mask(facts, chosen, weights, stored.size, dtype)


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
