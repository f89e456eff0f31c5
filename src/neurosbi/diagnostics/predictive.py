"""Posterior predictive checks: simulate at posterior draws and compare with the observed traces."""

from __future__ import annotations

import warnings

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


def closeness(model, theta, x_o, key, *, scale, within: float = 2.0) -> dict:
    """Simulate the features at each row of ``theta`` and compare them with the observed ``x_o``.

    Every simulation runs in full (no screening, ``simulate(..., screen=False)``).

    The deviation of each feature is in units of ``scale`` (per feature; NaN leaves a feature out of
    the test): for the pyloric network the spread of the rhythm across preparations, else the spread
    of the simulated features. A simulation is *close* when it is valid and every scaled feature lies
    within ``within`` of the observation.

    Returns:
        ``x`` (features), ``deviation`` (scaled, ``[n, features]``), ``valid`` and ``close`` (boolean ``[n]``).
    """
    from ..simulate import simulate

    theta = np.asarray(theta)
    bank = simulate(model, len(theta), key, theta=theta, chunk_size=len(theta), progress=False, screen=False)
    scale = np.asarray(scale, np.float64)
    used = np.isfinite(scale) & (scale > 0)
    deviation = (bank.x - np.asarray(x_o)) / np.where(used, scale, 1.0)
    deviation[:, ~used] = np.nan
    with np.errstate(invalid="ignore"):
        close = bank.valid & np.all(np.abs(deviation[:, used]) <= within, axis=1)
    return {"x": bank.x, "deviation": deviation, "valid": bank.valid, "close": close}


def feature_predictive(model, samples, x_o, key, *, scale, num_draws: int = 200, within: float = 2.0) -> dict:
    """``closeness`` at ``num_draws`` posterior draws (see there), summarised.

    Returns:
        ``deviation`` (scaled, ``[draws, features]``), ``valid`` (share of finite simulations),
        ``close`` (share of close draws), ``median_abs_deviation`` per feature (valid draws), ``num_draws``.
    """
    samples = np.asarray(samples)
    k_pick, k_sim = jax.random.split(key)
    n = min(num_draws, samples.shape[0])
    idx = np.asarray(jax.random.choice(k_pick, samples.shape[0], (n,), replace=False))
    res = closeness(model, samples[idx], x_o, k_sim, scale=scale, within=within)
    dev = res["deviation"][res["valid"]]
    with warnings.catch_warnings():  # features without a scale are all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        median_abs = np.nanmedian(np.abs(dev), axis=0) if len(dev) else np.full(dev.shape[1], np.nan)
    return {
        "deviation": res["deviation"],
        "valid": float(res["valid"].mean()),
        "close": float(res["close"].mean()),
        "within": within,
        "median_abs_deviation": median_abs,
        "num_draws": n,
    }
