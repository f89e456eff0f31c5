"""Identifiability of a fitted point: profile likelihoods and the Hessian of the objective (seed 003 Fig. S3).

``profile(objective, theta_hat, bounds, index, grid)`` evaluates the objective along a grid of one
parameter with the others either re-optimized at every grid point (the profile, ``optimize=True``:
L-BFGS warm-started from the neighbouring grid point, walking out from the optimum on each side) or
held at the optimum (the slice that seed 003's Fig. S3 draws, ``optimize=False``). The profile lies
below the slice everywhere: a flat profile means the data do not fix the parameter, and a curved slice
over a flat profile means it trades off against the others.

``hessian(objective, theta)`` is the Hessian of a JAX objective by forward-over-reverse AD (float64),
its eigen-decomposition gives the stiff and sloppy directions.

The objective has the optimizers' signature, ``objective(theta [batch, dim]) -> [batch]``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..inference.optimize import map_lbfgs


@dataclasses.dataclass(frozen=True)
class Profile:
    index: int
    grid: np.ndarray
    values: np.ndarray  # the objective along the grid
    others: np.ndarray  # [len(grid), dim]: the full parameter vector at each grid point
    optimized: bool


def profile(objective, theta_hat, bounds, index: int, grid, *, optimize: bool = True, max_steps: int = 50) -> Profile:
    """The profile (or, ``optimize=False``, the slice) of ``objective`` along parameter ``index``."""
    theta_hat = np.asarray(theta_hat, np.float64)
    grid = np.sort(np.asarray(grid, np.float64))
    dim = theta_hat.size
    if not 0 <= index < dim:
        raise ValueError(f"index must be in [0, {dim}), got {index}")
    low, high = (np.asarray(b, np.float64) for b in bounds)
    points = np.tile(theta_hat, (grid.size, 1))
    points[:, index] = grid
    if not optimize or dim == 1:
        with jax.enable_x64(True):
            values = np.asarray(objective(jnp.asarray(points)), np.float64)
        return Profile(index, grid, values, points, False)
    free = [j for j in range(dim) if j != index]

    def sub(theta_free, fixed):  # the objective with parameter ``index`` held at ``fixed`` ([batch] each)
        return objective(jnp.insert(theta_free, index, fixed[:, 0], axis=1))

    starts = np.tile(np.clip(theta_hat[free], low[free], high[free]), (grid.size, 1))
    result = map_lbfgs(sub, (low[free], high[free]), None, starts=starts, max_steps=max_steps, args=(grid[:, None],))
    points[:, free] = result.info["optima"]
    values = np.asarray(result.info["values"])
    return Profile(index, grid, values, points, True)


def hessian(objective, theta) -> np.ndarray:
    """Hessian ``[dim, dim]`` of ``objective`` at ``theta`` (float64, forward-over-reverse AD)."""
    with jax.enable_x64(True):
        theta = jnp.asarray(theta, jnp.float64)
        return np.asarray(jax.hessian(lambda t: objective(t[None])[0])(theta))
