"""How close "converged" is to the optimum: the certified rule against the previous one, and cvxpy.

    python benchmarks/bench_certificate.py [--seeds 0,1] [--quick]

The corpus: the 18 psl-examples rule sets with small synthetic facts
(``hlmrf.testing.psl_corpus``), three PSL programs where a loose rule fails (a weighted linear
equality, many tiny potentials, a summation equality; ``hlmrf.testing.certificate_programs``)
and random all-linear hinge models. Each model is solved three ways:

- **previous rule**: the stopping rule before issue 12, written as settings:
  ``gap_rel=5e-4, gap_abs=1e-5 * m, constraint_tol=1e-4, polish=false``;
- **certified**: today's defaults (gap <= 1e-4 |E| + 1e-7, constraints within 1e-5, polishing);
- **cvxpy** (HiGHS for linear models, OSQP otherwise, accuracy 1e-9): the optimum.

For each, the relative energy error against cvxpy, the largest hard-constraint violation, the
status and the iterations; the summary counts the models where a CONVERGED state is within 1e-4
relative energy of the optimum (1e-7 absolute near 0) *and* meets the constraints within 1e-5.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import numpy as np

from _common import header, md_table


def models(seeds, quick: bool):
    from hlmrf.testing.certificate_programs import PROGRAMS, program_model
    from hlmrf.testing.psl_corpus import NAMES, corpus_model
    from hlmrf.testing.random_models import random_model

    for name in NAMES:
        for seed in seeds:
            yield f"{name} (s{seed})", corpus_model(name, seed)
    for name in sorted(PROGRAMS):
        for k, seed in ((8, 0), (12, 1)) if quick else ((8, 0), (12, 1), (15, 2)):
            yield f"{name} k={k}", program_model(*PROGRAMS[name], k, seed)
    for seed in range(2 if quick else 4):
        yield f"random linear (s{seed})", random_model(np.random.default_rng(seed), 300, 3000,
                                                       squared_share=0.0, constraints=20,
                                                       weights=(1e-4, 1.0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1", help="synthetic-fact seeds of the psl-examples models")
    ap.add_argument("--quick", action="store_true", help="seed 0 only, fewer extra models")
    args = ap.parse_args(argv)
    from hlmrf.inference.admm import solve_admm
    from hlmrf.inference.check import solve_cvxpy
    from hlmrf.inference.settings import AdmmSettings

    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    new = AdmmSettings()
    print(header("Certified convergence against the previous stopping rule (issue 12)"))
    rows, good = [], {"previous": 0, "certified": 0}
    claims = {"previous": 0, "certified": 0}
    times = {"previous": 0.0, "certified": 0.0}
    n_models = 0
    for label, model in models(seeds, args.quick):
        n_models += 1
        ref = solve_cvxpy(model, eps=1e-9)
        old = replace(new, gap_rel=5e-4, gap_abs=1e-5 * model.m, constraint_tol=1e-4, polish=False)
        cells = [label, f"{model.m:,}", f"{ref.energy:.6g}"]
        for key, st in (("previous", old), ("certified", new)):
            t0 = time.perf_counter()
            res = solve_admm(model, st)
            times[key] += time.perf_counter() - t0
            rel = (res.energy - ref.energy) / max(abs(ref.energy), 1e-12)
            ok = res.energy - ref.energy <= 1e-4 * abs(ref.energy) + 1e-7 and res.violation <= 1e-5
            conv = res.status.value == "converged"
            claims[key] += conv
            good[key] += conv and ok
            extra = f", gap {res.relative_gap:.0e}" if key == "certified" and np.isfinite(res.gap) else ""
            cells.append(f"{'' if ok else '**'}{rel:+.1e}{'' if ok else '**'} / {res.violation:.0e} / "
                         f"{res.status.value[:4]} {res.iterations}{extra}")
        rows.append(cells)
    print(md_table(["model", "potentials", "optimum (cvxpy)",
                    "previous rule: rel. error / violation / status iterations",
                    "certified: rel. error / violation / status iterations, certified gap"], rows))
    print()
    for key in ("previous", "certified"):
        print(f"- {key}: {claims[key]} of {n_models} reported converged; {good[key]} of {n_models} "
              f"converged within 1e-4 of the optimum with constraints within 1e-5; "
              f"{times[key]:.2f} s of solving in all")
    print("\nBold: outside 1e-4 relative energy of the optimum, or a hard constraint violated by "
          "more than 1e-5.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
