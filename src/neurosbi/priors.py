"""Priors: flowjax distributions, plus what neurosbi needs to know about them.

Any object with ``sample(key, shape)`` and ``log_prob(theta)`` works as a prior. Box-uniform and
Gaussian priors (flowjax ``Uniform`` / ``Normal``) are recognised so that posteriors can respect a
bounded support exactly, report shrinkage against the prior's variance, and be saved as JSON.
"""

from __future__ import annotations

from typing import Any

import flowjax.distributions as fd
import jax
import jax.numpy as jnp
import numpy as np


def box_uniform(low, high) -> fd.Uniform:
    """Independent uniform prior on the box ``[low, high]`` (one bound per parameter)."""
    low = np.asarray(low, np.float32)
    high = np.asarray(high, np.float32)
    if low.shape != high.shape or low.ndim != 1:
        raise ValueError(f"low and high must be 1-D of equal length, got {low.shape} and {high.shape}")
    if not np.all(high > low):
        raise ValueError(f"every upper bound must exceed its lower bound, got low={low}, high={high}")
    return fd.Uniform(jnp.asarray(low), jnp.asarray(high))


def gaussian(loc, scale) -> fd.Normal:
    """Independent Gaussian prior."""
    return fd.Normal(jnp.asarray(loc, jnp.float32), jnp.asarray(scale, jnp.float32))


def bounds(prior) -> tuple[np.ndarray, np.ndarray] | None:
    """``(low, high)`` of a box-uniform prior, ``None`` for an unbounded one."""
    if isinstance(prior, fd.Uniform):
        return np.asarray(prior.minval), np.asarray(prior.maxval)
    return None


def dim(prior) -> int:
    shape = getattr(prior, "shape", None)
    if shape is None:
        shape = prior.sample(jax.random.key(0), ()).shape
    return int(np.prod(shape)) if shape else 1


def variance(prior, key=None) -> np.ndarray:
    """Marginal variances of the prior: exact for uniform / Gaussian, Monte Carlo otherwise."""
    if isinstance(prior, fd.Uniform):
        low, high = bounds(prior)
        return (high - low) ** 2 / 12.0
    if isinstance(prior, fd.Normal):
        return np.broadcast_to(np.asarray(prior.scale) ** 2, (dim(prior),)).copy()
    key = jax.random.key(0) if key is None else key
    return np.asarray(jnp.var(prior.sample(key, (20_000,)), axis=0))


def to_spec(prior) -> dict[str, Any]:
    """A JSON-able description of the prior (uniform or Gaussian only)."""
    if isinstance(prior, fd.Uniform):
        low, high = bounds(prior)
        return {"type": "uniform", "low": low.tolist(), "high": high.tolist()}
    if isinstance(prior, fd.Normal):
        d = dim(prior)
        return {
            "type": "normal",
            "loc": np.broadcast_to(np.asarray(prior.loc), (d,)).tolist(),
            "scale": np.broadcast_to(np.asarray(prior.scale), (d,)).tolist(),
        }
    raise TypeError(
        f"cannot save a prior of type {type(prior).__name__}; "
        "use neurosbi.priors.box_uniform or neurosbi.priors.gaussian"
    )


def from_spec(spec: dict[str, Any]):
    if spec["type"] == "uniform":
        return box_uniform(spec["low"], spec["high"])
    if spec["type"] == "normal":
        return gaussian(spec["loc"], spec["scale"])
    raise ValueError(f"unknown prior type {spec['type']!r}; expected 'uniform' or 'normal'")
