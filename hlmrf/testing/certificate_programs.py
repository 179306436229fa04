"""PSL programs on which a loose stopping rule reported CONVERGED too early (tests, benchmarks).

Each entry of :data:`PROGRAMS` is ``(rule text, observed predicates, target predicates)`` with
arities; :func:`program_model` grounds one on a random domain of ``k`` constants. They came from
``tests/engine/test_certified_convergence.py``, which checks the certificate on them against cvxpy;
``benchmarks/bench_certificate.py`` times them.
"""
from __future__ import annotations

import itertools

import numpy as np

from hlmrf.data.store import FactStore
from hlmrf.grounding.ground import ground
from hlmrf.language.parser import parse_rules
from hlmrf.model.hlmrf import HLMRF

__all__ = ["PROGRAMS", "program_model"]

PROGRAMS = {
    # A weighted linear equality grounds to two hinges per pair: the case that stopped 0.6% high.
    "symmetric-equality": ("10.0: Same(A, B) = Same(B, A) ^1\n1.0: Sim(A, B) -> Same(A, B) ^1\n"
                           "0.1: !Same(A, B) ^1\n", {"Sim": 2}, {"Same": 2}),
    "tiny-potentials": ("0.001: Sim(A, B) & Same(B, C) -> Same(A, C) ^1\n1.0: Sim(A, B) -> Same(A, B) ^1\n"
                        "0.5: !Same(A, B) ^1\n", {"Sim": 2}, {"Same": 2}),
    "summation-equality": ("Lab(A, +L) = 1 .\n1.0: Prior(A, L) -> Lab(A, L) ^1\n"
                           "0.3: Link(A, B) & Lab(A, L) -> Lab(B, L) ^1\n", {"Prior": 2, "Link": 2}, {"Lab": 2}),
}


def program_model(text: str, observed: dict[str, int], targets: dict[str, int], k: int, seed: int
                  ) -> HLMRF:
    """The normalised ground model of ``text`` over constants ``c0..c{k-1}``: each observed
    tuple present with probability 0.4 (random value), every target tuple open."""
    rng = np.random.default_rng(seed)
    store = FactStore()
    dom = [f"c{i}" for i in range(k)]
    for pred, arity in observed.items():
        rows = [t for t in itertools.product(dom, repeat=arity) if rng.random() < 0.4]
        store.add_observations(pred, rows, values=np.round(rng.random(len(rows)), 3), arity=arity)
    for pred, arity in targets.items():
        store.add_targets(pred, list(itertools.product(dom, repeat=arity)), arity=arity)
    return ground(parse_rules(text), store).normalized()
