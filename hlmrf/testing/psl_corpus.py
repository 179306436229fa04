"""The 18 psl-examples models (their own rules) on small synthetic facts, for solver tests.

``data/psl_examples.json`` beside this module holds each model's rules and which predicates are
open (see the README there). :func:`corpus_model` draws facts over one small domain of constants: each closed
predicate observes a random share of all tuples with random values (some exactly 1), each open
predicate has every tuple as a target. Deterministic for a given seed.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from hlmrf.data.store import FactStore
from hlmrf.grounding.ground import ground
from hlmrf.language.parser import parse_rules

MODELS_JSON = Path(__file__).parent / "data" / "psl_examples.json"


def corpus() -> dict:
    return json.loads(MODELS_JSON.read_text())


NAMES = tuple(sorted(corpus()))


def corpus_store(name: str, seed: int = 0, k: int = 5, density: float = 0.35) -> FactStore:
    spec = corpus()[name]
    rng = np.random.default_rng(seed)
    text = "\n".join(spec["rules"])
    quoted = sorted(set(s for s in __import__("re").findall(r"'([^']*)'", text)))
    domain = [f"c{i}" for i in range(k)] + quoted
    store = FactStore()
    for key, kind in spec["predicates"].items():
        pred, arity = key.split("/")
        arity = int(arity)
        tuples = list(itertools.product(domain, repeat=arity))
        if len(tuples) > 600:
            keep = rng.choice(len(tuples), 600, replace=False)
            tuples = [tuples[i] for i in sorted(keep)]
        if kind == "open":
            store.add_targets(pred, tuples, arity=arity)
        else:
            sel = [t for t in tuples if rng.random() < density]
            vals = np.where(rng.random(len(sel)) < 0.3, 1.0, np.round(rng.random(len(sel)), 3))
            store.declare(pred, arity)
            if sel:
                store.add_observations(pred, sel, values=vals, arity=arity)
    return store


def corpus_model(name: str, seed: int = 0, k: int = 5, density: float = 0.35, normalized: bool = True):
    """The ground model of psl-examples' ``name`` on synthetic facts (weights normalised)."""
    program = parse_rules("\n".join(corpus()[name]["rules"]), f"{name}.psl")
    model = ground(program, corpus_store(name, seed, k, density))
    return model.normalized() if normalized else model
