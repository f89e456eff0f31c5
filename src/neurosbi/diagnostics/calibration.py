"""Calibration: posterior z-score and shrinkage, expected coverage and SBC ranks.

Definitions as in Baldy et al. (2024, Fig. S6) and Talts et al. (2018):
z = |posterior mean − true| / posterior std; shrinkage = 1 − posterior variance / prior variance.
Expected coverage (Hermans et al. 2022): for held-out (θ*, x), the share of posterior draws with a
higher density than θ* gives the credibility level at which θ* is first covered; a calibrated posterior
covers θ* at level c in a share c of the cases. Marginal coverage uses central intervals per parameter.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import priors as _priors

LEVELS = np.linspace(0.05, 0.95, 19)


def zscore_shrinkage(samples, truth, prior) -> dict[str, np.ndarray]:
    """Per-parameter z-score and shrinkage of posterior ``samples [n, dim]`` against ``truth``."""
    samples = np.asarray(samples, np.float64)
    truth = np.asarray(truth, np.float64)
    mean, std = samples.mean(0), samples.std(0)
    return {
        "z_score": np.abs(mean - truth) / std,
        "shrinkage": 1.0 - std**2 / np.asarray(_priors.variance(prior), np.float64),
    }


def expected_coverage(posterior, theta, x, key, *, num_samples: int = 500, levels=LEVELS,
                      max_draws: int = 1_000_000) -> dict:
    """Coverage of held-out truths ``theta [m, dim]`` by the posterior at observations ``x [m, f]``.

    ``max_draws`` bounds the rejection sampler per case: a posterior with less than ``num_samples /
    max_draws`` of its mass in the prior box counts as failed.

    Returns:
        ``levels``; ``joint`` (highest-density regions); ``marginal`` ``[dim, levels]`` (central
        intervals); ``ranks`` ``[m, dim]`` (SBC rank of each truth among ``num_samples`` draws);
        ``num_tests``; ``num_failed`` (held-out cases whose posterior has no mass in the prior box,
        counted as not covered).
    """
    theta = jnp.asarray(theta, jnp.float32)
    x = jnp.asarray(x, jnp.float32)
    draws = posterior.sample_batch(key, num_samples, x, max_draws=max_draws)  # [m, n, dim]
    failed = np.asarray(jnp.any(jnp.isnan(draws), axis=(1, 2)))  # no posterior mass in the prior box
    draws = jnp.where(jnp.isnan(draws), theta[:, None, :], draws)
    lp_draws = posterior.log_prob(draws, x[:, None, :])  # [m, n]
    lp_truth = posterior.log_prob(theta, x)  # [m]
    alpha = np.array(jnp.mean(lp_draws > lp_truth[:, None], axis=1))  # level that first covers θ*
    ranks = np.array(jnp.sum(draws < theta[:, None, :], axis=1))  # [m, dim]
    u = (ranks + 0.5) / num_samples
    # A failed case covers its truth at no level: counted against the posterior, not dropped.
    alpha[failed] = 1.0
    u[failed] = 2.0
    levels = np.asarray(levels)
    joint = np.array([(alpha < c).mean() for c in levels])
    marginal = np.array([[(np.abs(u[:, d] - 0.5) < c / 2).mean() for c in levels] for d in range(theta.shape[1])])
    return {"levels": levels, "joint": joint, "marginal": marginal, "ranks": ranks, "num_tests": int(theta.shape[0]),
            "num_failed": int(failed.sum())}


def coverage_error(coverage: dict) -> float:
    """Largest absolute gap between empirical and nominal coverage (joint and marginals)."""
    gaps = [np.abs(coverage["joint"] - coverage["levels"]).max()]
    gaps += [np.abs(m - coverage["levels"]).max() for m in coverage["marginal"]]
    return float(max(gaps))
