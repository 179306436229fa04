"""The kind table (hlmrf.model.terms.TABLE): each kind's math against a brute-force evaluation,
every consumer reading the table, and the solvers taking the same iterates through it.

(The refactor that introduced the table was checked against iteration counts and state hashes
recorded before it, on 38 models in four solver modes; those machine-specific pins are not kept
here: the solver contract suite compares with cvxpy optima.)
"""
from __future__ import annotations


import numpy as np
import pytest

from hlmrf.inference.admm import _energy, _violation, layout, solve_admm
from hlmrf.inference.polish import project_dual
from hlmrf.model import terms
from hlmrf.model.terms import TABLE, Kind, coefficients, prox_at, term_energy, term_violation
from hlmrf.testing.psl_corpus import NAMES, corpus_model
from hlmrf.testing.random_models import clevr_like_model, random_model

torch = pytest.importorskip("torch")
from hlmrf.inference.torch_admm import _build, _certificate, solve_batch  # noqa: E402
from hlmrf.inference.settings import AdmmSettings  # noqa: E402
from hlmrf.model.batch import ModelBatch  # noqa: E402

KEYS = [(Kind.LINEAR, 1), (Kind.LINEAR, 2), (Kind.HINGE, 1), (Kind.HINGE, 2), (Kind.LEQ, 1), (Kind.EQ, 1)]


def _f(kind, p, d, w):
    """Brute-force energy of one row (the PSL definitions)."""
    if kind == Kind.LINEAR:
        return w * d ** p
    if kind == Kind.HINGE:
        return w * max(d, 0.0) ** p
    return 0.0


def _feasible(kind, d):
    return d <= 1e-12 if kind == Kind.LEQ else abs(d) <= 1e-12 if kind == Kind.EQ else True


@pytest.mark.parametrize("key", KEYS)
def test_prox_step_minimises_the_prox_objective(key):
    kind, p = key
    rng = np.random.default_rng(int(kind) * 2 + p)
    m = 200
    d, w, aa = rng.normal(0, 2, m), rng.uniform(0.1, 3, m), rng.uniform(0.2, 4, m)
    rho = 1.7
    co = coefficients(np.full(m, int(kind)), np.full(m, p), w, aa)
    t = prox_at(co, w, rho).step(d.copy())
    grid = np.linspace(-6, 6, 24001)
    for i in range(m):
        # along x = v - t a: d(x) = d - t |a|^2 and rho/2 |x - v|^2 = rho/2 t^2 |a|^2
        def phi(s):
            return _f(kind, p, d[i] - s * aa[i], w[i]) + 0.5 * rho * s * s * aa[i]
        if kind >= Kind.LEQ:
            # the projection: feasible, and no feasible point on the line is nearer (for EQ the
            # feasible point on the line is unique)
            assert _feasible(kind, d[i] - t[i] * aa[i])
            nearer = [s for s in grid if abs(s) < abs(t[i]) - 1e-9 and _feasible(kind, d[i] - s * aa[i])]
            assert not nearer
        else:
            assert phi(t[i]) <= min(phi(s) for s in grid) + 1e-9


@pytest.mark.parametrize("keys", [KEYS, [(Kind.HINGE, 2)], [(Kind.LINEAR, 1), (Kind.HINGE, 1)]])
def test_prox_at_folds_the_formula_and_splits_by_rows(keys):
    """ProxAt's folded step (ratio = num / D; k3, K1 left out when trivial) equals the formula as
    written, rows without copies included (D = 0: 0 / 0 is 0, q / 0 is inf capped at w / rho),
    and a share of its rows steps as the whole does on those rows."""
    rng = np.random.default_rng(len(keys))
    m = 300
    pick = rng.integers(0, len(keys), m)
    kind = np.array([keys[i][0] for i in pick], np.int8)
    p = np.array([keys[i][1] for i in pick], np.int8)
    w, aa = rng.uniform(0.1, 3, m), rng.uniform(0.2, 4, m)
    aa[::17] = 0.0  # constant terms
    d = rng.normal(0, 2, m)
    co = coefficients(kind, p, w, aa)
    rho = 1.3
    K1, D = terms.prox_bounds(co, w, rho)
    q = co.num * np.maximum(d, co.lb)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.minimum(np.where((D == 0.0) & (q == 0.0), 0.0, q / D) + co.k3, K1)
    prox = prox_at(co, w, rho)
    assert (prox.k3 is None) == (not co.k3.any()) and (prox.K1 is None) == (not np.isfinite(K1).any())
    got = prox.step(d.copy())
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and not np.isnan(got).any()
    for r0, r1 in [(0, 100), (100, 257), (257, m)]:
        np.testing.assert_array_equal(prox.rows(r0, r1).step(d[r0:r1].copy()), got[r0:r1])


@pytest.mark.parametrize("keys", [KEYS, [(Kind.HINGE, 2)], [(Kind.HINGE, 1), (Kind.LEQ, 1)]])
def test_prox_at_groups_equals_the_per_row_table(keys, monkeypatch):
    """Made group by group (a slice or an index array each, as the numpy kernel's layout lists
    them), the step is the per-row one's, constant rows included; ``lb`` is a number exactly when
    every group has the same."""
    from hlmrf.model.terms import prox_at_groups

    rng = np.random.default_rng(7 * len(keys))
    m = 240
    pick = np.sort(rng.integers(0, len(keys), m))
    pick[:40] = rng.permutation(pick[:40])  # the first groups' rows interleave: index arrays
    kind = np.array([keys[i][0] for i in pick], np.int8)
    p = np.array([keys[i][1] for i in pick], np.int8)
    w, aa = rng.uniform(0.1, 3, m), rng.uniform(0.2, 4, m)
    aa[::13] = 0.0
    groups = []
    for k in range(len(keys)):
        rows = np.flatnonzero(pick == k)
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
            rows = slice(int(rows[0]), int(rows[-1]) + 1)
        if np.size(np.arange(m)[rows]):
            groups.append((int(keys[k][0]), int(keys[k][1]), rows))
    d = rng.normal(0, 2, m)
    for rho, chunk in ((0.4, terms.PROX_CHUNK), (2.5, terms.PROX_CHUNK), (1.3, 17)):
        monkeypatch.setattr(terms, "PROX_CHUNK", chunk)  # 17: every group in several pieces
        want = prox_at(coefficients(kind, p, w, aa), w, rho).step(d.copy())
        got = prox_at_groups(groups, w, aa, rho)
        assert (np.ndim(got.lb) == 0) == (len({TABLE[k].lb for k in keys}) == 1)
        np.testing.assert_array_equal(got.step(d.copy()), want)


@pytest.mark.parametrize("key", KEYS)
def test_energy_violation_and_dual_domain_against_brute_force(key):
    kind, p = key
    rng = np.random.default_rng(10 + int(kind) * 2 + p)
    m = 50
    d, w = rng.normal(0, 2, m), rng.uniform(0.1, 3, m)
    k, pp = np.full(m, int(kind)), np.full(m, p)
    want = np.array([_f(kind, p, d[i], w[i]) for i in range(m)])
    np.testing.assert_allclose(term_energy(d, w, pp, k), want, rtol=1e-14, atol=0)
    viol = np.maximum(d, 0) if kind == Kind.LEQ else np.abs(d) if kind == Kind.EQ else np.zeros(m)
    np.testing.assert_array_equal(term_violation(d, k), viol)
    # Any theta in the dual domain gives f(d) >= theta d - theta^2/(4w) [p = 2] for every d
    # (the inequality dual_bound sums), and the domain is not larger than that allows.
    co = coefficients(k, pp, w)
    theta = terms.project_dual(co, rng.normal(0, 5, m))
    grid = np.linspace(-50, 50, 2001)
    for i in range(m):
        quad = theta[i] ** 2 / (4 * w[i]) if co.sq[i] else 0.0
        f = np.array([_f(kind, p, g, w[i]) if _feasible(kind, g) else np.inf for g in grid])
        assert np.all(f >= theta[i] * grid - quad - 1e-9)
    outside = {(Kind.LINEAR, 1): w + 0.5, (Kind.HINGE, 1): -np.full(m, 0.5), (Kind.HINGE, 2): -np.full(m, 0.5),
               (Kind.LEQ, 1): -np.full(m, 0.5)}.get(key)
    if outside is not None:  # just outside the domain the inequality fails somewhere on the grid
        for i in range(m):
            quad = outside[i] ** 2 / (4 * w[i]) if co.sq[i] else 0.0
            f = np.array([_f(kind, p, g, w[i]) if _feasible(kind, g) else np.inf for g in grid])
            assert np.any(f < outside[i] * grid - quad - 1e-9)


def _mixed_model(seed=0):
    rng = np.random.default_rng(seed)
    return random_model(rng, 20, 60, kinds=("linear", "hinge"), squared_share=0.5, constraints=4)


def test_every_consumer_reads_the_table(monkeypatch):
    """Replace the linear hinge's entry by the linear one's: every consumer must follow."""
    model = _mixed_model(3)
    as_linear = model.__class__(model.A, model.c, model.w, model.p,
                                np.where((model.kind == Kind.HINGE) & (model.p == 1), Kind.LINEAR, model.kind).astype(np.int8),
                                model.rule, model.index)
    y = np.random.default_rng(1).uniform(0, 1, model.n)
    theta = np.random.default_rng(2).normal(0, 2, model.m)
    h1 = (model.kind == Kind.HINGE) & (model.p == 1)
    assert h1.any()
    before = model.energy(y)
    monkeypatch.setitem(TABLE, (Kind.HINGE, 1), TABLE[Kind.LINEAR, 1])
    # the energy is the linear model's everywhere it is read
    assert model.energy(y) == pytest.approx(as_linear.energy(y), rel=1e-13) != pytest.approx(before)
    lay = layout(model)
    assert _energy(lay, y) == pytest.approx(as_linear.energy(y), rel=1e-12)
    W = _build(ModelBatch.from_models([model]), y, AdmmSettings(), torch.device("cpu"), torch.float64)
    zv = W.z.index_select(0, W.var)
    W.zv = zv
    th = torch.zeros(W.c.shape[0], dtype=torch.float64)
    _, energy, _ = _certificate(W, th, torch.zeros_like(W.a), torch.empty_like(W.a))
    assert float(energy[0]) == pytest.approx(as_linear.energy(y), rel=1e-12)
    # the dual domain: theta is fixed at w on the patched rows
    np.testing.assert_array_equal(project_dual(model, theta)[h1], model.w[h1])
    # the prox step: the same coefficients as the linear model's
    co, col = coefficients(model.kind, model.p, model.w, np.ones(model.m)), coefficients(as_linear.kind, as_linear.p, as_linear.w, np.ones(model.m))
    for a, b in zip(co.__dict__.values(), col.__dict__.values()):
        np.testing.assert_array_equal(a, b)
    # the cvxpy cross-check builds the same problem
    pytest.importorskip("cvxpy")
    from hlmrf.inference.check import solve_cvxpy

    np.testing.assert_allclose(solve_cvxpy(model).y, solve_cvxpy(as_linear).y, atol=1e-5)


def test_consumers_agree_with_brute_force_on_random_rows():
    model = _mixed_model(5)
    y = np.random.default_rng(4).uniform(0, 1, model.n)
    d = model.A @ y - model.c
    want = sum(_f(Kind(k), p, di, wi) for k, p, di, wi in zip(model.kind, model.p, d, model.w))
    worst = max([max(di, 0.0) if k == Kind.LEQ else abs(di) if k == Kind.EQ else 0.0 for k, di in zip(model.kind, d)])
    lay = layout(model)
    assert _energy(lay, y) == pytest.approx(want, rel=1e-12)
    assert model.energy(y) == pytest.approx(want, rel=1e-12)
    assert _violation(lay, y) == pytest.approx(worst, rel=1e-12)
    W = _build(ModelBatch.from_models([model]), y, AdmmSettings(), torch.device("cpu"), torch.float64)
    W.zv = W.z.index_select(0, W.var)
    viol, energy, _ = _certificate(W, torch.zeros(W.c.shape[0], dtype=torch.float64), torch.zeros_like(W.a),
                                   torch.empty_like(W.a))
    assert float(energy[0]) == pytest.approx(want, rel=1e-12)
    assert float(viol[0]) == pytest.approx(worst, rel=1e-12)


def _pinned_models():
    out = {}
    for s in range(12):
        rng = np.random.default_rng(100 + s)
        kinds = ("linear", "hinge") if s % 4 else ("hinge",)
        out[f"random{s}"] = random_model(rng, 15 + 3 * s, 40 + 5 * s, kinds=kinds, squared_share=(0.0, 0.5, 1.0)[s % 3],
                                         constraints=(0, 3, 5)[s % 3])
    for s in range(8):
        rng = np.random.default_rng(200 + s)
        out[f"clevr{s}"] = clevr_like_model(rng, mentions=3, objects=6, n_pots=60,
                                            squared_share=(0.0, 1.0, 0.5, 0.3)[s % 4])
    for name in NAMES:
        out[f"psl:{name}"] = corpus_model(name)
    return out


def test_solvers_share_iterates_through_the_table():
    """The numpy solver, the batched torch solver and a chunked batch read the same table and so
    take the same iterates (same iteration counts, same states to rounding) on every model.
    Polishing is off: the two solvers decide when to polish by different rules."""
    from hlmrf.inference.settings import AdmmSettings

    plain = AdmmSettings(polish=False)
    models = _pinned_models()
    names = list(models)
    got = {k: {"admm": solve_admm(models[k], plain)} for k in names}
    for mode, kw in (("batch", {}), ("chunked", dict(max_copies=400, compact_share=0.0))):
        for k, r in zip(names, solve_batch([models[k] for k in names], plain, **kw)):
            got[k][mode] = r
    for k in names:
        ref = got[k]["admm"]
        for mode in ("batch", "chunked"):
            r = got[k][mode]
            assert r.iterations == ref.iterations, (k, mode, r.iterations, ref.iterations)
            np.testing.assert_allclose(r.y, ref.y, atol=1e-9, err_msg=f"{k} {mode}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lean_coefficients_and_group_projection_match_the_full_table(seed):
    """The numpy kernel's layout asks only for PROX_FIELDS and projects multipliers group by group
    (no per-row lo/hi): the same numbers as the full per-row table, NaN and inf included."""
    from hlmrf.inference.admm import _project_dual

    rng = np.random.default_rng(seed)
    model = random_model(rng, 30, 90, kinds=("linear", "hinge"), constraints=5, squared_share=0.5)
    full = coefficients(model.kind, model.p, model.w)
    lean = coefficients(model.kind, model.p, model.w, fields=terms.PROX_FIELDS)
    for name in ("lb", "num", "den", "k3", "lo", "hi", "rho_in_den", "cap", "soft", "sq", "leq", "eq"):
        if name in terms.PROX_FIELDS:
            np.testing.assert_array_equal(getattr(lean, name), getattr(full, name))
        else:
            assert getattr(lean, name) is None
    theta = rng.normal(0, 2, model.m)
    theta[rng.choice(model.m, 6, replace=False)] = [np.nan, np.inf, -np.inf, np.nan, 1e300, -1e300]
    np.testing.assert_array_equal(_project_dual(layout(model), theta.copy()),
                                  terms.project_dual(full, theta))


@pytest.mark.parametrize("chunk", [1, 7, 1 << 18])
def test_energy_by_rule_in_chunks_is_the_whole_array_form(chunk, monkeypatch):
    from dataclasses import replace

    from hlmrf.model import hlmrf as hlmrf_model

    rng = np.random.default_rng(chunk)
    model = random_model(rng, 25, 80, kinds=("linear", "hinge"), constraints=4, squared_share=0.5)
    model = replace(model, rule=rng.integers(0, 5, model.m).astype(np.int32))  # several rules
    y = rng.uniform(0, 1, model.n)
    whole = np.bincount(model.rule, weights=term_energy(model.distance(y), model.w, model.p, model.kind),
                        minlength=len(model.index.rule_texts) or int(model.rule.max()) + 1)
    monkeypatch.setattr(hlmrf_model, "ENERGY_CHUNK", chunk)
    # per-row energies are the whole-array form's; the per-rule sums run chunk by chunk
    np.testing.assert_allclose(model.energy_by_rule(y), whole, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(model.potentials_per_rule(),
                                  np.bincount(model.rule, minlength=len(model.index.rule_texts)))
