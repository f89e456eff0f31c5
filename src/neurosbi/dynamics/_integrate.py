"""Accurate trajectories of a deterministic vector field (diffrax, float64, adaptive Dormand–Prince 8(7)),
for the reference data the dynamics tools are checked against."""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import jax
import jax.numpy as jnp
import numpy as np


def integrate(field: Callable, y0, t, *, rtol: float = 1e-10, atol: float = 1e-12,
              max_steps: int = 1_000_000) -> np.ndarray:
    """Trajectories ``[B, len(t), n]`` of ``ẏ = field(y)`` (one state ``[n] -> [n]``, JAX) from the
    initial conditions ``y0`` ``[B, n]`` (or ``[n]``: then ``[len(t), n]``), saved at the times ``t``.
    Rows after a failed step (blow-up, too many steps) are NaN."""
    y0 = np.asarray(y0, np.float64)
    single = y0.ndim == 1
    t = np.asarray(t, np.float64)
    with jax.enable_x64(True):
        term = diffrax.ODETerm(lambda _, y, args: field(y))
        ts = jnp.asarray(t)

        def one(y):
            sol = diffrax.diffeqsolve(term, diffrax.Dopri8(), ts[0], ts[-1], (ts[1] - ts[0]) / 4, y, saveat=diffrax.SaveAt(ts=ts),
                                      stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, dtmin=None),
                                      max_steps=max_steps, throw=False)
            return jnp.where(sol.result == diffrax.RESULTS.successful, sol.ys, jnp.nan)

        out = np.asarray(jax.jit(jax.vmap(one))(jnp.asarray(np.atleast_2d(y0))))
    return out[0] if single else out
