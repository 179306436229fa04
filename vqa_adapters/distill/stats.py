"""Confidence intervals and paired tests for a handful of seeds' results.

:func:`mean_ci` is the Student-t interval of a mean; :func:`paired_test` is the two-sided paired
t-test of matched pairs (the semantics of ``scipy.stats.ttest_rel``) with the interval of the
mean difference. Both drop NaNs (a metric a run did not measure) and return values, never print.
This module reads no files and knows nothing of runs or models; :mod:`.report` does.

Edge cases, stated once:

- ``n == 0``: every number is NaN.
- ``n == 1``: the mean is the value; the half width, bounds, ``t`` and ``p`` are NaN (one seed
  gives no estimate of the spread).
- zero spread with ``n >= 2`` (all values, or all differences, equal): the half width is 0; for
  the paired test ``t`` is ``+inf``/``-inf`` and ``p = 0`` when the common difference is non-zero,
  and ``t`` is NaN and ``p = 1`` when it is zero. scipy would return NaN with a RuntimeWarning
  in both cases; the limits used here are what the test statistic tends to as the spread shrinks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

__all__ = ["MeanCI", "PairedTest", "mean_ci", "paired_test"]


@dataclass(frozen=True)
class MeanCI:
    """The mean of ``values`` and its two-sided Student-t interval ``[low, high]``."""

    mean: float
    half_width: float
    low: float
    high: float
    n: int
    #: The values used (NaNs dropped), in input order.
    values: tuple[float, ...]


@dataclass(frozen=True)
class PairedTest:
    """The paired t-test of ``b - a``: mean difference, its interval, ``t``, two-sided ``p``."""

    mean_diff: float
    half_width: float
    low: float
    high: float
    t: float
    p: float
    n: int
    #: ``b - a`` per kept pair (pairs with a NaN on either side dropped), in input order.
    diffs: tuple[float, ...]


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        from hlmrf.errors import SettingsError

        raise SettingsError(f"confidence level must be in (0, 1), got {level:g} (e.g. 0.95)")
    return level


def _as_array(values: Iterable[float]) -> np.ndarray:
    x = np.asarray([np.nan if v is None else v for v in values], dtype=float).ravel()
    return x


def _interval(x: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mean, sample standard deviation and t half width of ``x`` (no NaNs)."""
    from scipy import stats

    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan
    sd = float(x.std(ddof=1))
    q = float(stats.t.ppf(0.5 + level / 2.0, n - 1))
    return mean, sd, q * sd / math.sqrt(n)


def mean_ci(values: Iterable[float], level: float = 0.95) -> MeanCI:
    """Mean of ``values`` with half width ``t_{(1+level)/2, n-1} * s / sqrt(n)``.

    ``s`` is the sample standard deviation (``ddof=1``). NaNs and ``None`` are dropped; with one
    value left the half width is NaN, with none everything is NaN.
    """
    level = _check_level(level)
    x = _as_array(values)
    x = x[~np.isnan(x)]
    mean, _, half = _interval(x, level)
    return MeanCI(mean=mean, half_width=half, low=mean - half, high=mean + half, n=int(x.size),
                  values=tuple(float(v) for v in x))


def paired_test(a: Iterable[float], b: Iterable[float], level: float = 0.95) -> PairedTest:
    """Two-sided paired t-test of ``b - a`` (``t = mean(d) / (s_d / sqrt(n))``, ``n - 1`` df).

    ``a`` and ``b`` are matched by position and must have the same length; a pair with a NaN on
    either side is dropped. ``n < 2`` gives NaN ``t`` and ``p``; zero spread is handled as the
    module docstring says, without warnings.
    """
    from scipy import stats

    level = _check_level(level)
    xa, xb = _as_array(a), _as_array(b)
    if xa.size != xb.size:
        raise ValueError(f"paired_test: a has {xa.size} values and b has {xb.size}; pairs need "
                         "the same number")
    keep = ~(np.isnan(xa) | np.isnan(xb))
    d = xb[keep] - xa[keep]
    n = int(d.size)
    mean, sd, half = _interval(d, level)
    if n < 2:
        t = p = math.nan
    elif sd == 0.0:
        t = math.copysign(math.inf, mean) if mean != 0.0 else math.nan
        p = 0.0 if mean != 0.0 else 1.0
    else:
        t = mean / (sd / math.sqrt(n))
        p = float(2.0 * stats.t.sf(abs(t), n - 1))
    return PairedTest(mean_diff=mean, half_width=half, low=mean - half, high=mean + half, t=t,
                      p=p, n=n, diffs=tuple(float(v) for v in d))
