"""A corpus of rule files in the styles of the public psl-examples models: each parses, prints back
to an equivalent program, and grounds (and solves) on small synthetic facts."""
import re
from pathlib import Path

import numpy as np
import pytest

from hlmrf import parse_rules
from hlmrf.data.store import FactStore
from hlmrf.grounding.ground import ground
from hlmrf.language.ast import ArithmeticRule, Constant

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.psl"))


def _constants(program):
    out = set()
    for rule in program.rules:
        atoms = list(rule.atoms) + [a for f in rule.filters for a in f.atoms()] \
            if isinstance(rule, ArithmeticRule) else [l.atom for l in rule.body + rule.head]
        out |= {t.value for a in atoms for t in a.args if isinstance(t, Constant)}
    return out


def synthetic_store(program, open_preds, seed=0, n=4):
    """Every atom over a few constants: targets for open predicates, random observations else."""
    rng = np.random.default_rng(seed)
    domain = sorted({f"c{i}" for i in range(n)} | _constants(program))
    s = FactStore()
    for key, (name, arity, _) in program.predicates().items():
        grid = np.array(np.meshgrid(*[np.arange(len(domain))] * arity, indexing="ij")).reshape(arity, -1).T
        rows = [tuple(domain[i] for i in r) for r in grid]
        if key in open_preds:
            s.add_targets(name, rows)
        else:
            keep = rng.random(len(rows)) < 0.6
            vals = np.round(rng.random(len(rows)), 3)
            s.add_observations(name, [r for r, k in zip(rows, keep) if k], values=vals[keep].tolist())
    return s


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_file_parses_prints_back_and_grounds(path):
    text = path.read_text()
    program = parse_rules(text, str(path))
    assert len(program.rules) >= 5
    again = parse_rules(str(program), str(path))
    assert again == program and str(again) == str(program)
    open_preds = {p.strip().upper() for p in re.search(r"// open: (.*)", text).group(1).split(",")}
    store = synthetic_store(program, open_preds)
    model = ground(program, store)
    per_rule = model.potentials_per_rule()
    assert model.m > 0 and (per_rule > 0).sum() >= len(program.rules) - 1, per_rule
    assert np.isfinite(model.c).all() and np.isfinite(model.A.data).all()


def test_corpus_covers_the_styles():
    assert {p.stem for p in CORPUS} >= {"collective_classification", "entity_resolution",
                                        "trust_propagation", "knowledge_graph", "recommender"}


def test_a_corpus_model_solves_to_the_exact_optimum():
    from hlmrf.inference import solve
    from hlmrf.inference.check import solve_cvxpy
    from hlmrf.inference.settings import AdmmSettings

    path = next(p for p in CORPUS if p.stem == "recommender")
    program = parse_rules(path.read_text(), str(path))
    model = ground(program, synthetic_store(program, {"RATING"}, n=3))
    ref = solve_cvxpy(model)
    res = solve(model, "admm", AdmmSettings(eps_abs=1e-7, eps_rel=1e-6, max_iter=50_000))
    assert res.energy <= ref.energy + 1e-3 * max(1.0, abs(ref.energy))
    assert model.violation(res.y) < 1e-3
