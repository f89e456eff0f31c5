"""Accurate trajectories of a deterministic vector field (diffrax, float64, adaptive Dormand–Prince 8(7)),
for the reference data the dynamics tools are checked against."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import lru_cache

import diffrax
import jax
import jax.numpy as jnp
import numpy as np


@lru_cache(maxsize=32)
def _solver(field: Callable, rtol: float, atol: float, max_steps: int):
    """One compiled, batched solver per (field, tolerances): repeated calls with the same field and shapes
    reuse the compilation. ``field(y, args)``."""
    term = diffrax.ODETerm(lambda _, y, args: field(y, args))

    def one(y, ts, args):
        sol = diffrax.diffeqsolve(term, diffrax.Dopri8(), ts[0], ts[-1], (ts[1] - ts[0]) / 4, y, args=args,
                                  saveat=diffrax.SaveAt(ts=ts),
                                  stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, dtmin=None),
                                  max_steps=max_steps, throw=False)
        return jnp.where(sol.result == diffrax.RESULTS.successful, sol.ys, jnp.nan)

    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


def _without_args(field):
    return lambda y, args: field(y)


_ADAPTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def integrate(field: Callable, y0, t, *, args=None, rtol: float = 1e-10, atol: float = 1e-12,
              max_steps: int = 1_000_000) -> np.ndarray:
    """Trajectories ``[B, len(t), n]`` of ``ẏ = field(y)`` (one state ``[n] -> [n]``, JAX; or
    ``field(y, args)`` when ``args`` is given, e.g. coefficients, so one compilation serves many) from the
    initial conditions ``y0`` ``[B, n]`` (or ``[n]``: then ``[len(t), n]``), saved at the times ``t``.
    Rows after a failed step (blow-up, too many steps) are NaN."""
    y0 = np.asarray(y0, np.float64)
    single = y0.ndim == 1
    t = np.asarray(t, np.float64)
    if args is None:  # one adapter per field object, so the compiled solver is found again
        field = _ADAPTED.setdefault(field, _without_args(field))
    with jax.enable_x64(True):
        args = jax.tree_util.tree_map(jnp.asarray, args)
        out = np.asarray(_solver(field, rtol, atol, max_steps)(jnp.asarray(np.atleast_2d(y0)), jnp.asarray(t), args))
    return out[0] if single else out
