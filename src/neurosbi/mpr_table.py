"""Seed 003's benchmark: six estimators of the Montbrió–Pazó–Roxin parameters, three data cases, one table.

``run_table(case, methods, repeats, out)`` (CLI: ``neurosbi bench mpr-table``) fits Δ, η, J with
differential evolution, particle swarm, Bayesian optimization, MAP (L-BFGS), NUTS and NPE on one
synthetic observation (ground truth Δ = 0.7, η = −4.6, J = 14.5, step current 3 on [30, 60) s, 100 s
at dt = 1 ms, v0 = −3, r0 = 0.5; reference §2.1) and writes ``table.json``, ``table.md`` and figures.

Cases (reference §2.6): ``deterministic`` (σ = 0, v and r observed), ``stochastic`` (σ = 0.1 on both,
Euler–Maruyama with Gaussian increments as published, v and r observed), ``missing`` (the stochastic
trace, v observed only; r is hidden and only scored).

One decimation for every method. The trace is integrated at 1 ms but every method sees the observed
samples every ``DECIMATION`` = 10 steps (10 ms, 10⁴ per channel): the optimizers' L2 objective and
the likelihoods compare the model with those samples only. The model itself is always integrated at
1 ms: the optimizers' skeleton runs every step, and the state-space transitions between two samples are
10 Euler steps of the drift with the 10 steps' noise lumped into one Gaussian (variance 10 σ² dt).
Euler at 10 ms instead would nearly cancel the damping of the stimulated focus (eigenvalues
−0.17 ± 5.7i: |1 + λ·0.01|² = 0.99997 against e^{2 Re λ · 0.01} = 0.9967). NPE reads its summary
features from the full trace (every 25 ms, the features' published definition).

Objective of the optimizers (reference §2.5): ‖X_model − X_obs‖₂ over the observed channels, X_model the
deterministic skeleton (σ = 0) at θ from the published initial state. Likelihoods of NUTS (float64):
- ``ode``: the skeleton plus Gaussian observation noise ε (half-normal(0.1) prior), the
  published ``uniform_ODE`` model (deterministic case);
- ``state-space``: latent v and r at the observed times, transitions as above, observation noise ε
  (half-normal(0.1)); σ fixed at 0.1 when both channels are observed (published ``uniform_fixedsig``,
  with the simulator's per-step sd √dt σ where that Stan file used σ), inferred with a half-normal(1)
  prior when only v is (``uniform_vonly_sigest``). Observed latents are written x = y + ε z
  (observation-centred): with exact data ε goes to zero and the centred form is a funnel that NUTS
  cannot cross (measured: R-hat of ε 3.2 after 1,000 warm-up steps; 1.01 with this form).

Metrics (reference §2.3 "Metrics"): parameter RMSE of the estimate (posterior mean for the Bayesian
methods) against the truth; time-series RMSE of the fitted trace against the true trace over both
channels at the observed times (the hidden r included in the missing case; the skeleton at the estimate,
or the posterior mean latent path for the state-space NUTS); wall time; for NUTS and NPE the
posterior z-score |mean − truth| / sd and shrinkage 1 − var_post / var_prior per parameter.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .diagnostics.calibration import zscore_shrinkage
from .inference import mcmc, optimize
from .models.montbrio import Montbrio, mean_field

DECIMATION = 10
CASES = ("deterministic", "stochastic", "missing")
METHODS = ("de", "pso", "bo", "map", "nuts", "npe")
PARAM_NAMES = ("delta", "eta", "J")
TRUTH = np.array([0.7, -4.6, 14.5])
LOW, HIGH = np.array([0.1, -10.0, 5.0]), np.array([5.0, -3.0, 20.0])

# Baldy et al. 2024, Neural Computation, Tables 1-3 (reference §2.6): parameter RMSE mean / std,
# time-series RMSE mean / std, running time (s) on an Intel i7-7700.
PUBLISHED = {
    "deterministic": {
        "de": (5.26e-16, 1.66e-15, 6.76e-19, 1.11e-18, 51), "pso": (0.718, 0.851, 3.22e-4, 2.89e-4, 35),
        "bo": (0.652, 0.292, 5.64e-4, 1.18e-4, 1394), "map": (4.034, 0.068, 4.55e-9, 4.87e-10, 149),
        "nuts": (1.11e-3, 3.53e-4, 3.99e-7, 1.49e-8, 354793), "npe": (1.33e-2, 7.09e-3, 2.87e-7, 2.03e-7, 5781)},
    "stochastic": {
        "de": (0.672, 0.617, 5.33e-4, 9.85e-5, 170), "pso": (1.363, 0.853, 7.17e-4, 1.12e-4, 68),
        "bo": (1.021, 0.520, 8.88e-4, 8.23e-5, 936), "map": (3.884, 0.303, 2.50e-4, 1.23e-4, 203),
        "nuts": (0.121, 0.081, 4e-6, 1.43e-8, 57388), "npe": (0.053, 0.024, 2e-6, 2.18e-7, 6457)},
    "missing": {
        "de": (0.426, 0.388, 0.218, 0.102, 247), "pso": (1.495, 0.720, 0.406, 0.054, 60),
        "bo": (0.716, 0.407, 0.384, 0.050, 1072), "map": (3.539, 0.029, 1.838, 0.185, 30),
        "nuts": (3.181, 1.271, 0.545, 0.179, 360417), "npe": (0.427, 0.296, 0.609, 0.213, 5254)},
}


@dataclasses.dataclass(frozen=True)
class MPRData:
    """One observation of a case: ``traces [2, T]`` (v, r) at 1 ms, and what the methods see."""

    case: str
    traces: np.ndarray
    sigma: float
    channels: tuple[int, ...]
    decimation: int = DECIMATION
    truth: np.ndarray = dataclasses.field(default_factory=lambda: TRUTH.copy())

    @property
    def samples(self) -> np.ndarray:
        """Both channels at the observed times ``[2, n]`` (the hidden r only for scoring)."""
        return self.traces[:, :: self.decimation]

    @property
    def observed(self) -> np.ndarray:
        """What the methods fit: the observed channels at the observed times ``[channels, n]``."""
        return self.samples[list(self.channels)]

    @property
    def model(self) -> Montbrio:
        return Montbrio(noise_sigma=self.sigma, observe="rv" if self.channels == (0, 1) else "v", noise="gaussian")


def make_data(case: str, seed: int = 0, *, decimation: int = DECIMATION) -> MPRData:
    """The observation of ``case``, simulated at the published truth with ``seed`` (float64)."""
    if case not in CASES:
        raise ValueError(f"case must be one of {', '.join(CASES)}, got {case!r}")
    sigma = 0.0 if case == "deterministic" else 0.1
    if 1000 % decimation or decimation < 1:
        raise ValueError(f"decimation must divide 1000 (the steps of 1 s), got {decimation}")
    with jax.enable_x64(True):
        model = Montbrio(noise_sigma=sigma, noise="gaussian", dtype="float64")
        traces = np.asarray(model.simulate(jax.random.key(seed), jnp.asarray(TRUTH[None])))[0]
    return MPRData(case, traces, sigma, (0,) if case == "missing" else (0, 1), decimation)


def _current(data: MPRData) -> np.ndarray:
    model = Montbrio()
    steps = np.arange(data.traces.shape[1])
    on, off = int(model.t_on / model.time_step), int(model.t_off / model.time_step)
    return np.where((steps >= on) & (steps < off), model.amplitude, 0.0)


def skeleton(theta, data: MPRData):
    """The deterministic skeleton at ``theta [batch, 3]``: ``[batch, 2, n]`` at the observed times,
    integrated by Euler at 1 ms from (v0, r0) = (−3, 0.5). Differentiable; call under x64 for float64."""
    theta = jnp.atleast_2d(theta)
    k, dt = data.decimation, Montbrio().time_step
    n = data.traces.shape[1] // k
    current = jnp.asarray(_current(data)[: n * k].reshape(n, k), theta.dtype)
    delta, eta, J = theta[:, 0], theta[:, 1], theta[:, 2]

    def group(state, inputs):
        v, r = state
        for i in range(k):  # unrolled: one fused loop per group, one recorded state per group
            dv, dr = mean_field(v, r, delta, eta, J, inputs[i])
            v, r = v + dt * dv, r + dt * dr
        return (v, r), jnp.stack(state)

    state0 = (jnp.full(delta.shape, -3.0, theta.dtype), jnp.full(delta.shape, 0.5, theta.dtype))
    _, out = jax.lax.scan(group, state0, current)  # [n, 2, batch]: the state at the start of each group
    return jnp.transpose(out, (2, 1, 0))


def objective(data: MPRData):
    """The optimizers' objective: ``theta [batch, 3] -> ‖skeleton − observed‖₂ [batch]`` (float64, jitted)."""
    channels = list(data.channels)

    @jax.jit
    def f(theta, observed):
        predicted = skeleton(theta, data)[:, channels]
        return jnp.sqrt(jnp.sum((predicted - observed) ** 2, axis=(1, 2)))

    def batched(theta):
        with jax.enable_x64(True):
            return f(jnp.asarray(theta, jnp.float64), jnp.asarray(data.observed, jnp.float64))

    return batched
