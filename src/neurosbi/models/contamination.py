"""The two ε-contamination tasks of robust simulation-based inference (Huang et al., NeurIPS 2023).

Each simulation is ``trials`` i.i.d. realisations of a short time series; the features are the raw
realisations, flat (``trials * length`` values), read by a permutation-invariant embedding net
(``neurosbi.inference.deep_set``). A contaminated observation replaces a share ε of the
realisations at the true parameters by realisations at a contaminating parameter outside what the
model is told (``contaminated_observation``): no parameter of the model explains the whole set.

- ``Ricker``: population N_t = exp(log r + log N_{t−1} − N_{t−1} + σ e_t), e_t ~ N(0, 1), σ = 0.3,
  N_0 = 1, observed as y_t ~ Poisson(φ N_t), t = 1..100. Parameters (log r, φ), prior
  U([2, 8] × [0, 20]), truth (4, 10), contaminant (4, 100).
- ``OUProcess``: Y_{t+1} = Y_t + θ₁ (exp(θ₂) − Y_t) Δt + ½ √Δt w_t, w_t ~ N(0, 1), Y_0 = 10,
  Δt = 5 / 26, 25 values. Prior U([0, 2] × [−2, 2]), truth (0.5, 1), contaminant (−0.5, 1)
  (mean reversion turned into divergence).

Published medians over 100 runs at ε = 20 % (1000 simulations, 100 realisations): parameter RMSE
NPE 10.91 vs NPE-RS 2.90 (Ricker), 1.42 vs 0.46 (OU); ``benchmarks/robust_contamination.py``
measures ours. These are benchmark tasks of the robust-inference literature, not neural models: they
are here so that our robust estimator is measured where published numbers exist.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._base import BoxModel, simulation_keys


class _IIDSeries(BoxModel):
    """``trials`` i.i.d. realisations of a ``length``-step series per parameter set."""

    trials: int = eqx.field(static=True, default=100)

    per_simulation_keys: ClassVar[bool] = True
    length: ClassVar[int]
    contaminant: ClassVar[tuple[float, ...]]

    def __check_init__(self):
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")

    @property
    def feature_names(self):
        return tuple(f"y{i}_{t}" for i in range(self.trials) for t in range(self.length))

    @property
    def channel_names(self):
        return tuple(f"realisation_{i}" for i in range(self.trials))

    @property
    def trace_shape(self):
        return (self.trials, self.length)

    def _one(self, key, theta):
        """One realisation ``[length]`` at one parameter vector."""
        raise NotImplementedError

    def simulate(self, key, theta):
        """``[batch, trials, length]``."""
        theta = jnp.asarray(theta, jnp.float32)
        keys = simulation_keys(key, theta.shape[0])

        def one_set(k, th):
            return jax.vmap(lambda kk: self._one(kk, th))(jax.random.split(k, self.trials))

        return jax.vmap(one_set)(keys, theta)

    def features(self, traces):
        return traces.reshape(traces.shape[0], -1)

    def contaminated_observation(self, key, epsilon: float, theta=None, contaminant=None) -> np.ndarray:
        """Features of one observation: ``round(epsilon * trials)`` realisations at ``contaminant``
        (default: the published one), the others at ``theta`` (default: the truth)."""
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        theta = np.asarray(self._truth if theta is None else theta, np.float32)
        contaminant = np.asarray(self.contaminant if contaminant is None else contaminant, np.float32)
        k_clean, k_bad = jax.random.split(key)
        clean = np.asarray(self.simulate(k_clean[None], theta[None]))[0]
        bad = np.asarray(self.simulate(k_bad[None], contaminant[None]))[0]
        n_bad = int(round(epsilon * self.trials))
        mixed = np.concatenate([clean[: self.trials - n_bad], bad[:n_bad]])
        return mixed.reshape(-1)


class Ricker(_IIDSeries):
    """Ricker population model observed through Poisson counts (see the module docstring)."""

    name: ClassVar[str] = "ricker"
    length: ClassVar[int] = 100
    _names = ("log_r", "phi")
    _low = (2.0, 0.0)
    _high = (8.0, 20.0)
    _truth = (4.0, 10.0)
    contaminant = (4.0, 100.0)
    sigma: ClassVar[float] = 0.3

    def _one(self, key, theta):
        k_e, k_y = jax.random.split(key)
        e = jax.random.normal(k_e, (self.length,))

        def step(log_n, e_t):
            log_n = theta[0] + log_n - jnp.exp(log_n) + self.sigma * e_t
            return log_n, log_n

        _, log_n = jax.lax.scan(step, jnp.float32(0.0), e)  # N_0 = 1
        rate = theta[1] * jnp.exp(jnp.minimum(log_n, 30.0))
        return jax.random.poisson(k_y, rate).astype(jnp.float32)


class OUProcess(_IIDSeries):
    """Discretised Ornstein–Uhlenbeck process (see the module docstring)."""

    name: ClassVar[str] = "oup"
    length: ClassVar[int] = 25
    _names = ("theta_1", "theta_2")
    _low = (0.0, -2.0)
    _high = (2.0, 2.0)
    _truth = (0.5, 1.0)
    contaminant = (-0.5, 1.0)
    y0: ClassVar[float] = 10.0
    step: ClassVar[float] = 5.0 / 26.0

    def _one(self, key, theta):
        w = jax.random.normal(key, (self.length - 1,))
        target = jnp.exp(theta[1])

        def step(y, w_t):
            y = y + theta[0] * (target - y) * self.step + 0.5 * jnp.sqrt(self.step) * w_t
            return y, y

        _, ys = jax.lax.scan(step, jnp.float32(self.y0), w)
        return jnp.concatenate([jnp.array([self.y0], jnp.float32), ys])
