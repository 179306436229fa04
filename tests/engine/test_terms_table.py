"""The kind table (hlmrf.model.terms.TABLE): each kind's math against a brute-force evaluation,
every consumer reading the table, and the refactor that introduced it pinned.

The pins (iterations and a hash of ``y`` from ``solve_admm``, ``solve_batch`` and a chunked
``solve_batch``, float64 on CPU) were recorded before the table replaced the per-solver formulas
(commit bbd0c93) and guard that refactor: it was to change no iterate. They are the code's own
earlier output, not a reference (the solver contract suite compares with cvxpy optima); a
deliberate change of the iteration may update them.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from hlmrf.inference.admm import _energy, _violation, layout, solve_admm
from hlmrf.inference.polish import project_dual
from hlmrf.model import terms
from hlmrf.model.terms import TABLE, Kind, coefficients, prox_bounds, prox_step, term_energy, term_violation
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
    K1, D = prox_bounds(co, w, rho)
    t = prox_step(co, d.copy(), K1, D)
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


def _hash(y):
    return hashlib.sha256(np.ascontiguousarray(y, dtype=np.float64).tobytes()).hexdigest()[:16]


def test_iterates_are_those_pinned_before_the_table():
    models = _pinned_models()
    assert set(models) == set(PINNED)
    names = list(models)
    got = {k: {"admm": solve_admm(models[k])} for k in names}
    for mode, kw in (("batch", {}), ("chunked", dict(max_copies=400, compact_share=0.0))):
        for k, r in zip(names, solve_batch([models[k] for k in names], **kw)):
            got[k][mode] = r
    diff = [(k, mode, PINNED[k][mode], [r.iterations, _hash(r.y)]) for k in names for mode, r in got[k].items()
            if [r.iterations, _hash(r.y)] != PINNED[k][mode]]
    assert not diff, diff


PINNED = {
    "random0": {"admm":[235,"70205a688ab9fe04"],"batch":[235,"70205a688ab9fe04"],"chunked":[235,"70205a688ab9fe04"]},
    "random1": {"admm":[40,"0a41b2f892e10ce5"],"batch":[40,"0a41b2f892e10ce5"],"chunked":[40,"0a41b2f892e10ce5"]},
    "random2": {"admm":[190,"497f409e56f0091e"],"batch":[245,"56b26ee718bbe30b"],"chunked":[245,"56b26ee718bbe30b"]},
    "random3": {"admm":[100,"072d328fcae02274"],"batch":[100,"0e573d0e816a57a5"],"chunked":[100,"0e573d0e816a57a5"]},
    "random4": {"admm":[130,"83ae3ac8c3466218"],"batch":[130,"a772e9c8c504007f"],"chunked":[130,"a772e9c8c504007f"]},
    "random5": {"admm":[170,"9ca024d6a493ec60"],"batch":[235,"97a1f07995820bbf"],"chunked":[235,"97a1f07995820bbf"]},
    "random6": {"admm":[520,"1ad92221a2b69624"],"batch":[520,"886c2887d34a116b"],"chunked":[520,"886c2887d34a116b"]},
    "random7": {"admm":[120,"4cbb9c67bdedb19a"],"batch":[120,"764c52b1c1145c1a"],"chunked":[120,"764c52b1c1145c1a"]},
    "random8": {"admm":[55,"9ff85981481eee69"],"batch":[110,"edaba9d8dff1aa19"],"chunked":[110,"edaba9d8dff1aa19"]},
    "random9": {"admm":[165,"99421d5566e39a44"],"batch":[165,"bc698ad4d2d571df"],"chunked":[165,"bc698ad4d2d571df"]},
    "random10": {"admm":[110,"6fe5d9a03e776f24"],"batch":[75,"e50f6887ee7075d2"],"chunked":[75,"e50f6887ee7075d2"]},
    "random11": {"admm":[185,"b0e9ff7c3f5e5f7f"],"batch":[255,"726dccb2978ea22c"],"chunked":[255,"726dccb2978ea22c"]},
    "clevr0": {"admm":[420,"f5588d6e2fb1f946"],"batch":[420,"f5588d6e2fb1f946"],"chunked":[420,"f5588d6e2fb1f946"]},
    "clevr1": {"admm":[50,"0d89b9137b6fe33c"],"batch":[35,"abb23b87ac621fce"],"chunked":[35,"abb23b87ac621fce"]},
    "clevr2": {"admm":[30,"f68532bf3fad5270"],"batch":[35,"57b52704ede9aec0"],"chunked":[35,"57b52704ede9aec0"]},
    "clevr3": {"admm":[65,"6148e52a8e35658e"],"batch":[65,"369a52d857e980f4"],"chunked":[65,"369a52d857e980f4"]},
    "clevr4": {"admm":[325,"520932c3a73088fb"],"batch":[495,"7e35a96707d99093"],"chunked":[495,"7e35a96707d99093"]},
    "clevr5": {"admm":[30,"6e3e9c8606148ba0"],"batch":[35,"8d4b703d53846313"],"chunked":[35,"8d4b703d53846313"]},
    "clevr6": {"admm":[140,"f3d6ae8e7ecd6e4f"],"batch":[190,"9ec38100773efed1"],"chunked":[190,"9ec38100773efed1"]},
    "clevr7": {"admm":[60,"50d0404beb015466"],"batch":[95,"0087d4a6c0db3acd"],"chunked":[95,"0087d4a6c0db3acd"]},
    "psl:citeseer": {"admm":[280,"730bbc3ca92ff797"],"batch":[580,"49137d2bbbf999e1"],"chunked":[580,"49137d2bbbf999e1"]},
    "psl:cora": {"admm":[280,"730bbc3ca92ff797"],"batch":[580,"49137d2bbbf999e1"],"chunked":[580,"49137d2bbbf999e1"]},
    "psl:drug-drug-interaction": {"admm":[5,"6d9c54dee5660c46"],"batch":[5,"6d9c54dee5660c46"],"chunked":[5,"6d9c54dee5660c46"]},
    "psl:entity-resolution": {"admm":[60,"8012d202da7019af"],"batch":[65,"8012d202da7019af"],"chunked":[65,"8012d202da7019af"]},
    "psl:epinions": {"admm":[5,"2d5565fb483d8ea4"],"batch":[5,"2d5565fb483d8ea4"],"chunked":[5,"2d5565fb483d8ea4"]},
    "psl:friendship": {"admm":[35,"9d4ba07dfff996a0"],"batch":[40,"9d4ba07dfff996a0"],"chunked":[40,"9d4ba07dfff996a0"]},
    "psl:imdb-er": {"admm":[205,"93527004745ffa38"],"batch":[205,"93527004745ffa38"],"chunked":[205,"93527004745ffa38"]},
    "psl:jester": {"admm":[5,"2d5565fb483d8ea4"],"batch":[5,"2d5565fb483d8ea4"],"chunked":[5,"2d5565fb483d8ea4"]},
    "psl:knowledge-graph-identification": {"admm":[1525,"78fed35f0f84cb28"],"batch":[1525,"98d43c313f4b1502"],"chunked":[1525,"98d43c313f4b1502"]},
    "psl:lastfm": {"admm":[55,"3f914bc7f6298f8b"],"batch":[55,"79031b6e29107685"],"chunked":[55,"79031b6e29107685"]},
    "psl:simple-acquaintances": {"admm":[35,"0370bd6eebedd8cd"],"batch":[50,"76679f3579d05cab"],"chunked":[50,"76679f3579d05cab"]},
    "psl:smokers": {"admm":[15,"5b6fb58e61fa4759"],"batch":[15,"5b6fb58e61fa4759"],"chunked":[15,"5b6fb58e61fa4759"]},
    "psl:social-network-analysis": {"admm":[120,"45691c9171e5bf5f"],"batch":[120,"92413d76f7c9984f"],"chunked":[120,"92413d76f7c9984f"]},
    "psl:stance-4forums": {"admm":[30,"bbc09bc81a2da5a8"],"batch":[40,"05dc1157bed3ee3b"],"chunked":[40,"05dc1157bed3ee3b"]},
    "psl:stance-createdebate": {"admm":[30,"bbc09bc81a2da5a8"],"batch":[40,"05dc1157bed3ee3b"],"chunked":[40,"05dc1157bed3ee3b"]},
    "psl:trust-prediction": {"admm":[5,"2d5565fb483d8ea4"],"batch":[5,"2d5565fb483d8ea4"],"chunked":[5,"2d5565fb483d8ea4"]},
    "psl:user-modeling": {"admm":[595,"28abed1a7bd472ae"],"batch":[855,"05fcca9c6ff1f610"],"chunked":[855,"05fcca9c6ff1f610"]},
    "psl:yelp": {"admm":[55,"3f914bc7f6298f8b"],"batch":[55,"79031b6e29107685"],"chunked":[55,"79031b6e29107685"]},
}
