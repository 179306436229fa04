"""Stage 6: weight learning. Learners fit rule weights to truth on a ground model.

Three learners, scikit-learn style (hyperparameters in ``__init__``, ``fit`` returns ``self``,
learned state ends in ``_``): :class:`VotedPerceptron` (approximate maximum likelihood with MAP
states, the reference engine's default), :class:`MaxPseudoLikelihood`, and
:class:`MapLossLearner` (squared error or cross-entropy of the MAP state, gradients by implicit
differentiation). :func:`make_learner` builds one by the names the command line uses.
"""
from hlmrf.learning.base import EpochRecord, Learner, truth_vector
from hlmrf.learning.maploss import MapLossLearner, map_gradient
from hlmrf.learning.perceptron import VotedPerceptron
from hlmrf.learning.pseudolikelihood import MaxPseudoLikelihood
from hlmrf.learning.rules import program_with_weights, rules_text

METHODS = ("perceptron", "pseudolikelihood", "mse", "bce")


def make_learner(method: str, **params) -> Learner:
    """A learner by command-line name: ``perceptron``, ``pseudolikelihood``, ``mse``, ``bce``."""
    from hlmrf.errors import SettingsError

    if method == "perceptron":
        return VotedPerceptron(**params)
    if method == "pseudolikelihood":
        return MaxPseudoLikelihood(**params)
    if method in ("mse", "bce"):
        return MapLossLearner(loss=method, **params)
    raise SettingsError(f"unknown learning method {method!r}; choose one of {', '.join(METHODS)}")


__all__ = ["EpochRecord", "Learner", "METHODS", "MapLossLearner", "MaxPseudoLikelihood",
           "VotedPerceptron", "make_learner", "map_gradient", "program_with_weights",
           "rules_text", "truth_vector"]
