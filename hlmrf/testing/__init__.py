"""Helpers shared by hlmrf's tests and benchmarks; not part of the public API.

They are installed with the package so that tests and benchmarks import them by module path
(``from hlmrf.testing.random_models import random_model``) instead of editing ``sys.path``. Names
here may change without notice. ``import hlmrf`` does not import this package, and only
:mod:`hlmrf.testing.rule_strategies` needs an extra dependency (hypothesis, a test requirement).

Modules
-------
random_models : seeded random HL-MRFs and one-VQA-question-shaped models.
psl_corpus : the 18 psl-examples rule sets on small synthetic facts (``data/psl_examples.json``).
certificate_programs : PSL programs where a loose stopping rule reported convergence too early.
reference_grounder : a brute-force grounder, the independent reference of the grounding tests.
lang_helpers : build stores, ground rule text, compare with cvxpy (rule-language tests).
learning_synthetic : a learning problem whose truth is the MAP state under known weights.
rule_strategies : hypothesis strategies that generate PSL rule text.
"""
