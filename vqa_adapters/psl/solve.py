"""Ground a chunk's facts once and solve every question's block, with hlmrf's solvers.

The chunk's store holds question-scoped constants, so the ground model is block-diagonal: every
row touches the candidate atoms of one question. :func:`block_batch` cuts it into one model per
question (rows sorted by question, columns already in question order) so a batched ADMM gives
each question its own ``rho`` and its own stopping rule: in numpy on the CPU
(:func:`hlmrf.inference.batch_numpy.solve_batch_numpy`, no torch import, the ``auto`` choice
there) or in torch on any device (:func:`hlmrf.solve_batch`, the ``auto`` choice on CUDA). The
``numpy`` solver solves the union model in one go instead (one stopping rule for all). This module
does not build facts or choose objects.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

import hlmrf
from hlmrf.errors import SettingsError
from hlmrf.inference.settings import AdmmSettings
from hlmrf.model.batch import ModelBatch
from hlmrf.model.hlmrf import HLMRF

from .facts import FactChunk
from .rules import RuleSet

__all__ = ["SOLVERS", "DEFAULT_SETTINGS", "ChunkSolution", "block_batch", "normalize_blocks", "solve_chunk",
           "check_device", "available_devices", "resolve_solver"]

SOLVERS = ("auto", "numpy-batch", "torch", "numpy")

#: ADMM settings for these models: rho 0.1 halves the iterations of the default rho 1 on the
#: shared CLEVR questions (weights normalised to a largest of 1, so most are small).
DEFAULT_SETTINGS = AdmmSettings(rho=0.1)


@dataclass(frozen=True)
class ChunkSolution:
    """Candidate scores per question and what the solve cost.

    ``scores[k]`` is question ``k``'s ``(mentions, objects)`` matrix; ``iterations[k]`` and
    ``converged[k]`` its solver record (the union's, for the numpy solver).
    """

    scores: list
    iterations: np.ndarray
    converged: np.ndarray
    rows: int
    variables: int
    ground_seconds: float
    solve_seconds: float


def block_batch(model: HLMRF, var_block: np.ndarray, n_blocks: int) -> ModelBatch:
    """Cut a block-diagonal model into a :class:`ModelBatch` of its blocks
    (:meth:`ModelBatch.from_blocks`: rows sorted by block, each block's model built only when
    asked for).

    ``var_block[i]`` is the block of column ``i`` (non-decreasing); every row must touch one block
    only (checked).
    """
    return ModelBatch.from_blocks(model, var_block, n_blocks)


def normalize_blocks(model: HLMRF, var_block: np.ndarray, n_blocks: int) -> HLMRF:
    """Divide each block's weights by the block's largest (PSL's normalisation, per question).

    The blocks share no variable, so each block's MAP state is unchanged; a question whose rules
    reach only small weights is not left with weights far below ``rho``, as one normalisation
    over the union would leave it.
    """
    if model.m == 0:
        return model
    A = model.A
    row_block = np.asarray(var_block, np.int64)[A.indices[A.indptr[:-1]]]
    wmax = np.zeros(n_blocks)
    np.maximum.at(wmax, row_block, model.w)
    scale = np.where(wmax > 0, wmax, 1.0)[row_block]
    return replace(model, w=model.w / scale)


@contextmanager
def torch_threads(num_threads: int | None):
    """Run the block with ``torch.set_num_threads(num_threads)`` (None: leave it), then restore.

    The batched solve is hundreds of iterations of a few dozen operations on tensors of some
    10^4-10^5 entries: too small to gain from intra-op threads, while each operation pays their
    fork/join, and on a shared machine a thread that is descheduled stalls every operation (we
    measured 0.09 s with one thread and 0.09-1.5 s with two for the same 2,000-question chunk on 2
    busy cores).
    """
    if num_threads is None:
        yield
        return
    import torch  # the torch solver needs it anyway

    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_device(device: str) -> str:
    """Return ``device`` if the torch solver can run there, else raise :class:`SettingsError`
    listing the devices this machine offers (``cpu``, and ``cuda``/``cuda:N`` where CUDA is
    available). Imports torch only for a CUDA device."""
    import re

    m = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", str(device))
    if m is None or (m.group(1) == "cpu" and m.group(2) is not None):
        raise SettingsError(f"unknown device {device!r}; choose one of {', '.join(available_devices())}")
    if m.group(1) == "cuda":
        valid = available_devices()
        if len(valid) == 1:
            raise SettingsError(f"device {device!r}: CUDA is not available here (no GPU, or a "
                                "CPU-only torch build); use --device cpu")
        if m.group(2) is not None and device not in valid:
            raise SettingsError(f"device {device!r} does not exist; choose one of {', '.join(valid)}")
    return device


def available_devices() -> list[str]:
    """``cpu``, then ``cuda`` and ``cuda:0``.. when torch sees a GPU."""
    try:
        import torch
    except ImportError:
        return ["cpu"]
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu"] + (["cuda"] + [f"cuda:{k}" for k in range(n)] if n else [])


def resolve_solver(solver: str, device: str = "cpu") -> str:
    """The solver ``solver`` names on ``device``: ``auto`` is ``numpy-batch`` on the CPU (the same
    per-question rules as the torch solver without the second it takes to import torch) and
    ``torch`` on a GPU. Raises :class:`SettingsError` for an unknown solver or ``numpy-batch`` on a
    GPU."""
    if solver not in SOLVERS:
        raise SettingsError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    on_cpu = str(device) == "cpu"
    if solver == "auto":
        return "numpy-batch" if on_cpu else "torch"
    if solver == "numpy-batch" and not on_cpu:
        raise SettingsError(f"solver {solver!r} runs on the CPU only; use --device cpu, or --solver torch "
                            f"for device {device!r}")
    return solver


def solve_chunk(rules: RuleSet, chunk: FactChunk, settings: AdmmSettings | None = None, *,
                solver: str = "auto", device: str = "cpu", dtype: str = "float64",
                num_threads: int | None = 1) -> ChunkSolution:
    """Ground ``rules`` on the chunk's store (once) and solve all its questions.

    Parameters
    ----------
    solver : ``"numpy-batch"`` (batched ADMM in numpy, one stopping rule per question),
        ``"torch"`` (the same in torch, on any device; needs torch), ``"numpy"`` (ADMM on the
        union model) or ``"auto"`` (see :func:`resolve_solver`).
    device, dtype : for the torch solver (``"cuda"`` runs on a GPU); the numpy solvers run in
        float64 on the CPU.
    num_threads : torch's CPU threads during the torch solve (see :func:`torch_threads`; None
        leaves torch's setting); restored afterwards.
    """
    solver = resolve_solver(solver, device)
    st = settings or DEFAULT_SETTINGS
    t0 = time.perf_counter()
    model = hlmrf.ground(rules.program, chunk.store)
    if "candidate" in model.index.predicates:
        args, cols = model.index.atoms("candidate")
    else:  # no question of the chunk has a candidate object (nothing in its scene can match)
        args, cols = np.asarray(chunk.target_codes)[:0], slice(0, 0)
    if cols.start != 0 or cols.stop != model.n or not np.array_equal(args, chunk.target_codes):
        raise RuntimeError("the ground model's candidate atoms are not the chunk's targets in order")
    t1 = time.perf_counter()
    K = len(chunk)
    if st.normalize_weights:
        model = normalize_blocks(model, chunk.target_question, K)
    if solver == "numpy":
        res = hlmrf.solve_admm(model, st)
        y = res.y
        its = np.full(K, res.iterations)
        conv = np.full(K, res.status == hlmrf.Status.CONVERGED)
    else:
        batch = block_batch(model, chunk.target_question, K)
        if solver == "numpy-batch":
            from hlmrf.inference.batch_numpy import solve_batch_numpy

            results = solve_batch_numpy(batch, st)
        else:
            with torch_threads(num_threads):
                results = hlmrf.solve_batch(batch, st, device=device, dtype=dtype)
        y = np.concatenate([r.y for r in results]) if results else np.zeros(0)
        its = np.fromiter((r.iterations for r in results), np.int64, K)
        conv = np.fromiter((r.status == hlmrf.Status.CONVERGED for r in results), bool, K)
    t2 = time.perf_counter()
    return ChunkSolution(chunk.scores(y), its, conv, model.m, model.n, t1 - t0, t2 - t1)
