"""Peak detection with the semantics of ``scipy.signal.find_peaks(x, height=h, distance=d)``.

scipy's distance rule is a sequential greedy pass (keep the highest peak, drop its neighbours closer
than ``d``, repeat), which JAX cannot express as one vectorised pass. We use the equivalent parallel
form: in each round every remaining peak that is the highest within ``d - 1`` samples on both sides
is kept, and every peak within ``d - 1`` samples of a kept one is dropped. A peak kept this way is
exactly one the greedy pass keeps (all higher neighbours were dropped by even higher ones), so the
rounds reproduce scipy's result; on MPR traces they end after at most three rounds.

Sliding maxima are computed by doubling (max over 1, 2, 4, ... samples, then two overlapping
windows): about ten fused passes. ``lax.cummax`` (an associative scan) measured 7.5 ns per element on
the project's CPU, several times slower, and is used only when a trace has flat stretches.

Plateaus follow scipy: a flat top is one peak at its middle sample (rounded down), and a plateau
touching either end of the series is not a peak. Equal heights within ``d`` of each other (a
measure-zero event on noisy traces) are resolved in favour of the earlier peak; scipy's choice follows
numpy's argsort, which is not stable, so with exact ties the two may keep different peaks.

All functions work along the last axis of ``[..., time]`` arrays, so a batch is one call.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


def _shift_pad(x, left: int, right: int, value):
    pad = [(0, 0)] * (x.ndim - 1) + [(left, right)]
    return jnp.pad(x, pad, constant_values=value)


def _strict_maxima(x):
    inner = (x[..., 1:-1] > x[..., :-2]) & (x[..., 1:-1] > x[..., 2:])
    return _shift_pad(inner, 1, 1, False)


def _plateau_maxima(x):
    n = x.shape[-1]
    idx = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), x.shape)
    differs = x[..., 1:] != x[..., :-1]
    rises = _shift_pad(x[..., 1:] > x[..., :-1], 1, 0, False)
    falls = _shift_pad(x[..., 1:] < x[..., :-1], 0, 1, False)
    starts = _shift_pad(differs, 1, 0, True)
    ends = _shift_pad(differs, 0, 1, True)
    # Carry each run's start index and "entered from below" flag along the run without a gather:
    # pack them as 2 * index + flag and take a running maximum (a running minimum for run ends).
    axis = x.ndim - 1
    left = jax.lax.cummax(jnp.where(starts, 2 * idx + rises, -1), axis=axis)
    right = jax.lax.cummin(jnp.where(ends, 2 * idx + falls, 2 * n + 1), axis=axis, reverse=True)
    run_start, entered_rising = left // 2, (left % 2) == 1
    run_end, left_falling = right // 2, (right % 2) == 1
    return (idx == (run_start + run_end) // 2) & entered_rising & left_falling


def local_maxima(x: Float[Array, "... time"]) -> Bool[Array, "... time"]:
    """Mask of local maxima, plateau midpoints included, as scipy's ``_local_maxima_1d``."""
    if x.shape[-1] < 3:
        return jnp.zeros(x.shape, bool)
    has_plateau = jnp.any(x[..., 1:] == x[..., :-1])
    return jax.lax.cond(has_plateau, _plateau_maxima, _strict_maxima, x)


def _sliding_max(p, half_width: int):
    """max(p[..., j - half_width : j + half_width + 1]) for every j, by doubling."""
    n = p.shape[-1]
    size = 2 * half_width + 1
    k = 1
    while 2 * k <= size:
        k *= 2
    cur = _shift_pad(p, half_width, half_width, -jnp.inf)
    w = 1
    while w < k:  # cur[i] = max(padded[i : i + 2w])
        cur = jnp.maximum(cur[..., :-w], cur[..., w:])
        w *= 2
    return jnp.maximum(cur[..., :n], cur[..., size - k : size - k + n])


def find_peaks(x: Float[Array, "... time"], height: float, distance: int) -> Bool[Array, "... time"]:
    """Mask of the peaks ``scipy.signal.find_peaks(x, height=height, distance=distance)`` returns."""
    if distance < 1:
        raise ValueError(f"distance must be >= 1 sample, got {distance}")
    candidate = local_maxima(x) & (x >= height)
    if distance == 1:
        return candidate
    reach = distance - 1
    priority = jnp.where(candidate, x, -jnp.inf)
    index = jnp.arange(x.shape[-1], dtype=jnp.float32)

    def undecided(state):
        kept, alive = state
        return jnp.any(alive & ~kept)

    def one_round(state):
        kept, alive = state
        p = jnp.where(alive, priority, -jnp.inf)
        maximal = alive & ~kept & (p >= _sliding_max(p, reach))
        # Maximal peaks within reach of each other have equal heights: the earlier one wins.
        earliest = -_sliding_max(jnp.where(maximal, -index, -jnp.inf), reach)
        dominant = maximal & (earliest == index)
        kept = kept | dominant
        near_kept = _sliding_max(jnp.where(kept, 1.0, 0.0).astype(x.dtype), reach) > 0
        alive = alive & (kept | ~near_kept)
        return kept, alive

    kept, _ = jax.lax.while_loop(undecided, one_round, (jnp.zeros_like(candidate), candidate))
    return kept
