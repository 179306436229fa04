"""The structured (voted) perceptron: approximate maximum likelihood with MAP states.

The reference engine's default learner (``MaxLikelihoodMPE``, a ``VotedPerceptron``). The
likelihood of an HL-MRF is ``P(y) = exp(-sum_r w_r Phi_r(y)) / Z(w)`` with ``Phi_r`` the
unweighted energy (total incompatibility) of rule ``r``; its gradient in ``w_r`` is
``E_P[Phi_r] - Phi_r(truth)``. The expectation is replaced by ``Phi_r`` at the MAP state, so one
step is ``w_r += eta_t * (Phi_r(MAP) - Phi_r(truth) - l2 w_r - l1) / n_r`` with ``n_r`` the rule's
ground-rule count (``scale_gradient``), ``eta_t = step_size / t`` (``schedule``), weights clipped at
0 (``nonnegative``) and the learned weights the average of the visited ones (``average``). Defaults
follow the reference. It does not estimate the expectation by sampling.
"""
from __future__ import annotations

import numpy as np

from hlmrf.inference.settings import AdmmSettings
from hlmrf.learning.base import Learner, check_number, rule_counts, unit_energy_by_rule


class VotedPerceptron(Learner):
    """Structured perceptron weight learning (approximate maximum likelihood).

    Parameters
    ----------
    step_size : base step ``eta`` (reference default 1.0).
    epochs : number of gradient steps, one MAP solve each (reference default 25).
    schedule : shrink the step as ``eta / t`` (reference default on).
    scale_gradient : divide each rule's gradient by its number of ground rules (reference default).
    average : return the average of the weights after every step (the "voted" perceptron).
    l2, l1 : regularisation ``l2/2 |w|^2 + l1 |w|`` (reference defaults 0).
    nonnegative : clip weights at 0 after every step (reference default).
    init : ``"model"`` (the rules' weights), ``"uniform"`` (all 1) or an array per rule.
    latent : ``"infer"`` (targets without truth take their MAP state given the labelled ones,
        as the reference's HardEM) or ``"error"``.
    settings : :class:`AdmmSettings` of the MAP solves (warm-started across epochs).

    Attributes
    ----------
    weights_ : learned weight per rule (0 for hard rules).
    history_ : list of :class:`~hlmrf.learning.base.EpochRecord`; ``loss`` is the energy gap
        ``sum_r w_r (Phi_r(truth) - Phi_r(MAP)) >= 0`` (the reference's reported loss).
    model_ : the training model re-weighted with ``weights_``.
    """

    name = "perceptron"

    def __init__(self, *, step_size: float = 1.0, epochs: int = 25, schedule: bool = True,
                 scale_gradient: bool = True, average: bool = True, l2: float = 0.0,
                 l1: float = 0.0, nonnegative: bool = True, init="model", latent: str = "infer",
                 settings: AdmmSettings | None = None):
        super().__init__(epochs=epochs, l2=l2, nonnegative=nonnegative, init=init, latent=latent,
                         settings=settings)
        self.step_size = step_size
        self.schedule = schedule
        self.scale_gradient = scale_gradient
        self.average = average
        self.l1 = l1

    def _check_params(self) -> None:
        super()._check_params()
        check_number("step_size", self.step_size, positive=True)
        check_number("l1", self.l1)

    def _setup(self, w: np.ndarray) -> None:
        counts = rule_counts(self.model_, self.n_rules_)
        self._scale = np.where(self.scale_gradient & (counts > 0), counts, 1.0)
        self._mean = np.zeros(self.n_rules_)
        self._phi_truth = None

    def _step(self, epoch: int, w: np.ndarray):
        if self._phi_truth is None or not self.labelled_.all():
            self._phi_truth = unit_energy_by_rule(self._unit, self._completed_truth(w), self.n_rules_)
        res = self._map(w)
        phi_map = unit_energy_by_rule(self._unit, res.y, self.n_rules_)
        loss = float(np.dot(w, self._phi_truth - phi_map))
        eta = self.step_size / epoch if self.schedule else self.step_size
        grad = (phi_map - self._phi_truth - self.l2 * w - self.l1) / self._scale
        w = w + eta * grad
        if self.nonnegative:
            w = np.maximum(w, 0.0)
        # A running mean, not a sum divided at the end: the sum of large finite weights can
        # overflow where their mean does not.
        self._mean = self._mean * ((epoch - 1) / epoch) + np.where(self.learnable_, w, 0.0) / epoch
        metrics = self._train_metrics(res.y)
        metrics["iterations"] = res.iterations
        return loss, w, metrics

    def _final_weights(self, w: np.ndarray) -> np.ndarray:
        return self._mean if self.average else w
