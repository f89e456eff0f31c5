"""Posterior predictive checks: simulate at posterior draws and compare with the observed traces."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..models import simulate_traces


def posterior_predictive(model, samples, observed_traces, key, *, num_draws: int = 64) -> dict:
    """Traces simulated at ``num_draws`` posterior draws, and their distance to the observation.

    Args:
        model: the model that made the observation.
        samples: posterior draws ``[n, dim]``.
        observed_traces: ``[channels, time]``.
        key: PRNG key.
        num_draws: how many draws to simulate.

    Returns:
        ``rmse`` per channel of the median predicted trace to the observation, ``rmse_draws``
        (RMSE of each simulated trace, averaged over channels), ``median`` / ``low`` / ``high`` traces
        (5–95 %), and ``rmse_at_mean`` for the trace simulated at the posterior mean.
    """
    samples = np.asarray(samples)
    k_pick, k_sim, k_mean = jax.random.split(key, 3)
    idx = np.asarray(jax.random.choice(k_pick, samples.shape[0], (min(num_draws, samples.shape[0]),), replace=False))
    sim = lambda k, th: simulate_traces(model, k, th)  # noqa: E731
    traces = np.asarray(sim(k_sim, jnp.asarray(samples[idx], jnp.float32)))  # [d, c, t]
    obs = np.asarray(observed_traces)
    finite = np.all(np.isfinite(traces), axis=(1, 2))
    good = traces[finite]
    median = np.median(good, axis=0)
    at_mean = np.asarray(sim(k_mean, jnp.asarray(samples.mean(0, keepdims=True), jnp.float32)))[0]
    return {
        "rmse": np.sqrt(np.mean((median - obs) ** 2, axis=-1)),
        "rmse_draws": np.sqrt(np.mean((good - obs[None]) ** 2, axis=(1, 2))),
        "rmse_at_mean": np.sqrt(np.mean((at_mean - obs) ** 2, axis=-1)),
        "median": median,
        "low": np.quantile(good, 0.05, axis=0),
        "high": np.quantile(good, 0.95, axis=0),
        "num_invalid": int((~finite).sum()),
        "at_mean": at_mean,
    }
