"""hlmrf's ADMM against exact solvers on random hinge-loss MRFs.

    python benchmarks/bench_random.py [--sizes 5000,50000,500000] [--quick] [--kinds linear,squared]
        [--settings key=value ...] [--variant "label:key=value,key=value" ...]
        [--ref-timeout 600] [--ref-mem-gb 8] [--qp-solver clarabel|osqp] [--no-reference]
        [--seed 0]

**The generator** (:func:`random_hlmrf`, deterministic by seed): ``m`` potentials over
``n = m // 2`` variables in [0, 1]. Potential ``i`` touches ``k_i`` distinct variables, ``k_i``
uniform in {2, 3, 4} (so each variable is in about 6 potentials); coefficients ``a_ij`` are a
random sign times a magnitude uniform in [0.5, 1.5]; the constant is ``c_i = a_i . r_i - delta_i``
for a random point ``r_i`` in [0, 1]^k and ``delta_i`` uniform in [0, 0.5], so every potential is
satisfiable on its own but is violated at a random point and pulls against its neighbours (the
optimum has energy > 0 with many active hinges, unlike random Lukasiewicz clauses, which y = 0.5
satisfies all at once). Weights uniform in [0.05, 1], then divided by the largest (PSL's
normalisation). ``linear``: every potential is ``w max(0, a.y - c)``; ``squared``: ``w max(0,
a.y - c)^2``.

**The references**, each in a child process with a wall-clock cap (``--ref-timeout``, default 600 s)
and an address-space cap (``--ref-mem-gb``, default 8 GiB): linear models by HiGHS through
``scipy.optimize.linprog(method="highs-ipm")`` (``--lp-method``; ``"highs"`` picks the dual simplex,
30x slower than the interior point at 20k potentials here) on the LP ``min w.s  s.t.  s >= A y - c, s >= 0,
0 <= y <= 1``; squared models by Clarabel (interior point, default) or OSQP (``--qp-solver``) on the
QP ``min sum w s^2`` with the same constraints, through their own Python APIs at tolerance 1e-8.
A reference that hits a cap is reported "n/a" with the reason. Energies of every state are
evaluated by the same ``HLMRF.energy``; the gap is ``(E_admm - E_ref) / E_ref``.

hlmrf runs in this process (``solve_admm``, default ``AdmmSettings`` plus ``--settings``); each
``--variant`` adds a row with other settings (e.g. the reference engine's algorithm and stopping
rule: ``"reference-like:alpha=1,adaptive_rho=false,gap_abs=inf,polish=false,constraint_tol=5e-3,check_every=50"``). Reference times
include building its matrices (not the model generation).
``--quick`` runs 5,000 potentials only.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from _common import fmt, header, load_line, md_table, parse_settings, python, run_measured

THIS = str(Path(__file__).resolve())


def random_hlmrf(m: int, squared: bool, seed: int = 0):
    """The random model described in the module docstring, as an ``HLMRF``."""
    import scipy.sparse as sp

    from hlmrf.model.hlmrf import HLMRF, GroundIndex
    from hlmrf.model.terms import Kind

    rng = np.random.default_rng([seed, m, int(squared)])
    n = max(4, m // 2)
    k = rng.integers(2, 5, size=m)
    indptr = np.concatenate([[0], np.cumsum(k)])
    L = int(indptr[-1])
    # Up to 4 candidate columns per row: a random start plus cumulative random offsets (mod n),
    # distinct unless the offsets wrap around; the loop below redraws those rare duplicates.
    base = rng.integers(0, n, size=m)
    offs = rng.integers(1, n, size=(m, 3))
    cand = np.empty((m, 4), dtype=np.int64)
    cand[:, 0] = base
    cand[:, 1:] = (base[:, None] + np.cumsum(offs, axis=1)) % n
    row_of = np.repeat(np.arange(m), k)
    pos = np.arange(L) - indptr[:-1][row_of]
    cols = cand[row_of, pos]
    # Replace the (rare) duplicates inside a row by fresh draws until every row is distinct.
    while True:
        order = np.lexsort((cols, row_of))
        dup = np.zeros(L, dtype=bool)
        same = (row_of[order][1:] == row_of[order][:-1]) & (cols[order][1:] == cols[order][:-1])
        dup[order[1:][same]] = True
        if not dup.any():
            break
        cols[dup] = rng.integers(0, n, size=int(dup.sum()))
    a = rng.choice([-1.0, 1.0], size=L) * rng.uniform(0.5, 1.5, size=L)
    r = rng.uniform(0.0, 1.0, size=L)
    c = np.add.reduceat(a * r, indptr[:-1]) - rng.uniform(0.0, 0.5, size=m)
    w = rng.uniform(0.05, 1.0, size=m)
    A = sp.csr_matrix((a, cols, indptr), shape=(m, n))
    A.sort_indices()
    model = HLMRF(A, c, w, np.full(m, 2 if squared else 1, np.int8), np.full(m, int(Kind.HINGE), np.int8),
                  np.zeros(m, np.int32), GroundIndex(rule_texts=("random hinge",)))
    return model.normalized()


# ----------------------------------------------------------------------------- references

def solve_highs(model, timeout: float, method: str = "highs-ipm"):
    import scipy.sparse as sp
    from scipy.optimize import linprog

    m, n = model.m, model.n
    cost = np.concatenate([np.zeros(n), model.w])
    A_ub = sp.hstack([model.A, -sp.identity(m, format="csr")], format="csr")
    bounds = np.concatenate([np.tile([0.0, 1.0], (n, 1)), np.tile([0.0, np.inf], (m, 1))])
    res = linprog(cost, A_ub=A_ub, b_ub=model.c, bounds=bounds, method=method,
                  options=dict(time_limit=timeout, presolve=True))
    if res.x is None:
        raise RuntimeError(f"HiGHS: {res.message}")
    return np.clip(res.x[:n], 0.0, 1.0), f"HiGHS {method} ({res.message.split('.')[0]})"


def _qp_blocks(model):
    """``min 1/2 x'Px  s.t.  rows of G x <= h`` over ``x = (y, s)``."""
    import scipy.sparse as sp

    m, n = model.m, model.n
    P = sp.diags(np.concatenate([np.zeros(n), 2.0 * model.w]), format="csc")
    I_m, I_n = sp.identity(m, format="csr"), sp.identity(n, format="csr")
    G = sp.vstack([sp.hstack([model.A, -I_m]),                       # A y - s <= c
                   sp.hstack([sp.csr_matrix((m, n)), -I_m]),          # -s <= 0
                   sp.hstack([I_n, sp.csr_matrix((n, m))]),           # y <= 1
                   sp.hstack([-I_n, sp.csr_matrix((n, m))])], format="csc")
    h = np.concatenate([model.c, np.zeros(m), np.ones(n), np.zeros(n)])
    return P, G, h


def solve_clarabel(model, timeout: float):
    import clarabel

    P, G, h = _qp_blocks(model)
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.time_limit = timeout
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = 1e-8
    solver = clarabel.DefaultSolver(P, np.zeros(P.shape[0]), G, h,
                                    [clarabel.NonnegativeConeT(G.shape[0])], settings)
    sol = solver.solve()
    return np.clip(np.asarray(sol.x)[:model.n], 0.0, 1.0), f"Clarabel ({sol.status})"


def solve_osqp(model, timeout: float):
    import osqp

    P, G, h = _qp_blocks(model)
    prob = osqp.OSQP()
    prob.setup(P, np.zeros(P.shape[0]), G, np.full(len(h), -np.inf), h, eps_abs=1e-8, eps_rel=1e-8,
               max_iter=1_000_000, polishing=True, verbose=False, time_limit=timeout)
    res = prob.solve()
    return np.clip(np.asarray(res.x)[:model.n], 0.0, 1.0), f"OSQP ({res.info.status})"


def child_reference(m: int, squared: bool, seed: int, solver: str, out: str, timeout: float,
                    mem_gb: float) -> None:
    import resource

    cap = int(mem_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    model = random_hlmrf(m, squared, seed)
    t0 = time.perf_counter()
    if solver.startswith("highs"):
        y, label = solve_highs(model, timeout, solver)
    else:
        y, label = {"clarabel": solve_clarabel, "osqp": solve_osqp}[solver](model, timeout)
    seconds = time.perf_counter() - t0
    np.save(out, y)
    print("BENCH-JSON " + json.dumps(dict(seconds=seconds, label=label)))


def run_reference(m, squared, seed, solver, timeout, mem_gb, workdir: Path):
    out = workdir / f"ref-{m}-{'sq' if squared else 'lin'}-{seed}.npy"
    out.unlink(missing_ok=True)
    cmd = [python(), THIS, "--_reference", str(m), str(int(squared)), str(seed), solver, str(out),
           str(timeout), str(mem_gb)]
    run = run_measured(cmd, timeout=timeout + 120, log_dir=workdir / f"log-{out.stem}")
    if run.timed_out:
        return None, f"n/a (over {timeout:.0f} s cap)", run
    if run.rc != 0:
        tail = run.stderr.strip().splitlines()[-1:] or ["?"]
        if "Time limit" in run.stderr:
            return None, f"n/a (over {timeout:.0f} s cap)", run
        why = "out of memory" if "MemoryError" in run.stderr or "bad_alloc" in run.stderr \
            or run.rc in (-9, 137) else tail[0][:80]
        return None, f"n/a ({why}; {mem_gb:g} GiB cap)", run
    info = json.loads([ln for ln in run.stdout.splitlines() if ln.startswith("BENCH-JSON ")][-1][11:])
    return (np.load(out), info["seconds"], info["label"]), None, run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5000,50000,500000", help="comma-separated potential counts")
    ap.add_argument("--kinds", default="linear,squared")
    ap.add_argument("--quick", action="store_true", help="5,000 potentials only")
    ap.add_argument("--settings", action="append", default=[], metavar="KEY=VALUE",
                    help="AdmmSettings option for the main hlmrf row (repeatable)")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL:K=V,K=V",
                    help="an extra hlmrf row with other settings (repeatable)")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--qp-solver", choices=["clarabel", "osqp"], default="clarabel")
    ap.add_argument("--lp-method", choices=["highs", "highs-ds", "highs-ipm"], default="highs-ipm",
                    help="linprog method for linear models: highs-ipm (default; interior point with "
                         "crossover, the fastest HiGHS here), highs (auto: dual simplex), highs-ds")
    ap.add_argument("--ref-timeout", type=float, default=600.0, help="seconds per reference solve")
    ap.add_argument("--ref-mem-gb", type=float, default=8.0, help="address-space cap of a reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="/tmp/hlmrf-bench-random")
    ap.add_argument("--_reference", nargs=7, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._reference:
        m, sq, seed, solver, out, timeout, mem = args._reference
        return child_reference(int(m), bool(int(sq)), int(seed), solver, out, float(timeout), float(mem))

    from hlmrf.inference.admm import solve_admm
    from hlmrf.inference.settings import AdmmSettings

    sizes = [5000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    variants = [("default" + (" + " + " ".join(args.settings) if args.settings else ""),
                 parse_settings(args.settings))]
    for v in args.variant:
        label, _, spec = v.partition(":")
        variants.append((label, parse_settings([s for s in spec.split(",") if s.strip()])))
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(header("hlmrf ADMM vs exact solvers on random HL-MRFs"))
    rows = []
    for m in sizes:
        for kind in kinds:
            squared = kind == "squared"
            t = time.perf_counter()
            model = random_hlmrf(m, squared, args.seed)
            gen_s = time.perf_counter() - t
            ref, why = None, "skipped (--no-reference)"
            if not args.no_reference:
                solver = args.qp_solver if squared else args.lp_method
                ref, why, _ = run_reference(m, squared, args.seed, solver, args.ref_timeout,
                                            args.ref_mem_gb, work)
            e_ref = model.energy(ref[0]) if ref else None
            for label, opts in variants:
                res = solve_admm(model, AdmmSettings.from_mapping(opts))
                gap = None if e_ref is None else (res.energy - e_ref) / abs(e_ref)
                lb = res.extra.get("lower_bound") if res.extra else None
                rows.append([
                    f"{m:,}", f"{model.n:,}", kind, label,
                    f"{res.seconds:.2f}", f"{res.iterations} ({res.status.value})", f"{res.energy:.6g}",
                    ref[2] if ref else why, fmt(ref[1] if ref else None, ".2f"), fmt(e_ref, ".6g"),
                    fmt(gap, "+.2e"),
                    fmt(None if lb is None else (res.energy - lb) / abs(res.energy), ".1e"),
                    fmt(ref[1] / res.seconds if ref else None, ".1f") + ("x" if ref else ""),
                ])
                print(f"m={m} {kind} {label}: admm {res.seconds:.2f} s, {res.iterations} it, "
                      f"gap {fmt(gap, '+.2e')}, "
                      f"ref {fmt(ref[1] if ref else None, '.2f')} s (generate {gen_s:.1f} s); "
                      f"{load_line()}", file=sys.stderr)
    print(md_table(["potentials", "variables", "kind", "hlmrf settings", "ADMM s", "iterations",
                    "energy ADMM", "reference", "ref s", "energy ref", "rel. gap", "certified gap bound",
                    "ref s / ADMM s"], rows))
    print(f"\nrel. gap = (E_admm - E_ref) / E_ref under the same model; certified gap bound = "
          f"(E_admm - dual bound) / E_admm from the solver's own Lagrangian bound, when it reports "
          f"one. {load_line()} (at end)")


if __name__ == "__main__":
    main()
