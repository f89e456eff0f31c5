"""Recalibrating an amortized posterior by the temperature of its flow's base distribution.

A flow maps a base normal N(μ, s²) to θ through a bijection T(·; x). Scaling the base's standard
deviation by a temperature τ (τ > 1 widens, τ < 1 sharpens) gives the family

    q_τ(θ | x) = N(T⁻¹(θ; x); μ, τ² s²) |det ∂T⁻¹/∂θ|,

which keeps the flow's shape (its modes, its correlations, its bounds) and moves every credible
region's mass at once; τ = 1 is the trained posterior. ``fit_temperature`` picks τ on held-out
simulations so that the expected coverage (joint highest-density regions and per-parameter central
intervals, ``diagnostics.expected_coverage``) is closest to nominal: temperature scaling, the standard
post-hoc recalibration of a probabilistic classifier, applied to a density. It needs simulations the
flow was not trained on and that are not used afterwards to *report* coverage (``workflow.infer``
keeps the two apart).

Why: a single flow trained by maximum likelihood on a finite bank is typically over-confident
(Hermans et al. 2022); on the 8-parameter Hodgkin–Huxley posterior one neural spline flow covers the
truth 90 % of the time at the 95 % level, and an ensemble of two or five is under-confident instead
(``benchmarks/results/hh_calibration*.json``). Ensembles and conservative losses cost training time
several times over; one scalar fitted after training costs seconds.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import flowjax.distributions as fd
import numpy as np

from ..diagnostics.calibration import LEVELS, coverage_error, expected_coverage
from .embedding import EmbeddedFlow, EnsembleFlow

LOG_RANGE = (np.log(0.5), np.log(2.0))  # temperatures searched


def _temper_flow(flow, factor: float):
    if isinstance(flow, EmbeddedFlow):
        return dataclasses.replace(flow, flow=_temper_flow(flow.flow, factor))
    if isinstance(flow, EnsembleFlow):
        return dataclasses.replace(flow, stacked=eqx.filter_vmap(lambda f: _temper_flow(f, factor))(flow.stacked))
    base = flow.base_dist
    if not isinstance(base, fd.Normal):
        raise TypeError(f"temperature needs a normal base distribution, this flow has {type(base).__name__}")
    return eqx.tree_at(lambda f: f.base_dist, flow, fd.Normal(base.loc, base.scale * factor))


def temper(posterior, temperature: float):
    """``posterior`` with its flow's base standard deviation multiplied by ``temperature / posterior.temperature``
    (temperatures compose: the result's ``temperature`` is the one given)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    factor = float(temperature) / posterior.temperature
    return dataclasses.replace(posterior, flow=_temper_flow(posterior.flow, factor), temperature=float(temperature))


def fit_temperature(posterior, theta, x, key, *, num_samples: int = 200, levels=LEVELS, steps: int = 7):
    """The temperature in [0.5, 2] whose posterior is best calibrated on held-out ``theta [m, dim]``,
    ``x [m, f]``: smallest largest coverage error over ``levels``, joint and marginal.

    The error is a V-shaped function of log τ (too sharp on one side, too wide on the other), so a
    golden-section search over log τ finds it: ``steps + 3`` coverage evaluations (τ = 1, then the
    search) narrow log τ to a bracket of width ``log 4 · 0.618^steps`` (±2.4 % in τ for 7). The
    same key is used at every temperature (common random numbers) so that the curve is smooth.
    Returns ``(tempered posterior, report)``; the report lists every temperature tried.
    """
    theta, x = np.asarray(theta), np.asarray(x)
    if len(theta) < 50:
        raise ValueError(f"fit_temperature needs at least 50 held-out simulations, got {len(theta)}")
    tried: dict[float, float] = {}

    def error(log_t: float) -> float:
        t = round(float(np.exp(log_t)), 4)
        if t not in tried:
            cov = expected_coverage(temper(posterior, t), theta, x, key, num_samples=num_samples, levels=levels)
            tried[t] = coverage_error(cov)
        return tried[t]

    a, b = LOG_RANGE
    error(0.0)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(steps):
        if error(c) <= error(d):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    best = min(tried, key=lambda t: (round(tried[t], 6), abs(np.log(t))))
    report = {"temperature": best, "calibration_error": tried[best], "calibration_error_at_1": tried[1.0],
              "tried": {str(t): e for t, e in sorted(tried.items())}, "num_calibration": int(len(theta))}
    return temper(posterior, best), report


__all__ = ["fit_temperature", "temper"]
