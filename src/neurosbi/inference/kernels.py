"""Gaussian-kernel MMD pieces shared by NPE-RS training (differentiable) and the MMD test."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def sq_dists(a, b):
    """Squared Euclidean distances ``[len(a), len(b)]``."""
    return jnp.maximum(jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2 * a @ b.T, 0.0)


def mmd_to_point(a, y):
    """Biased (V-statistic) MMD² between the rows of ``a [m, d]`` and the single point ``y [d]``, with
    k(u, v) = exp(−|u − v|² / (2 h²)) and h the median distance between rows of ``a`` (held fixed
    for the gradient). Differentiable in ``a`` and ``y``; ``m`` must be at least 2."""
    m = a.shape[0]
    d_aa = sq_dists(a, a)
    upper = np.triu_indices(m, 1)
    h2 = jax.lax.stop_gradient(jnp.maximum(jnp.median(d_aa[upper]), 1e-12))
    d_ay = jnp.sum((a - y) ** 2, axis=1)
    return jnp.mean(jnp.exp(-d_aa / (2 * h2))) - 2 * jnp.mean(jnp.exp(-d_ay / (2 * h2))) + 1.0
