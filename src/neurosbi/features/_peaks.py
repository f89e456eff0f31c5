"""Peak detection with the semantics of ``scipy.signal.find_peaks(x, height=h, distance=d)``.

scipy's distance rule is a sequential greedy pass (keep the highest peak, drop its neighbours closer
than ``d``, repeat), which JAX cannot express as one vectorised pass. We use the equivalent parallel
form: in each round every remaining peak that is the highest within ``d - 1`` samples on both sides
is kept, and every peak within ``d - 1`` samples of a kept one is dropped. A peak kept this way is
exactly one the greedy pass keeps (all higher neighbours were dropped by even higher ones), so the
rounds reproduce scipy's result; they end after a handful of rounds on real traces. Sliding maxima
use the van Herk / Gil-Werman block algorithm (two cumulative maxima), so a round costs O(n).

Plateaus follow scipy: a flat top is one peak at its middle sample (rounded down), and a plateau
touching either end of the series is not a peak. Equal heights within ``d`` of each other (a
measure-zero event on noisy traces) are resolved in favour of the earlier peak; scipy's choice follows
numpy's argsort, which is not stable, so with exact ties the two may keep different peaks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


def local_maxima(x: Float[Array, " time"]) -> Bool[Array, " time"]:
    """Mask of local maxima, plateau midpoints included, as scipy's ``_local_maxima_1d``."""
    n = x.shape[0]
    idx = jnp.arange(n, dtype=jnp.int32)
    differs = x[1:] != x[:-1]
    rises = jnp.concatenate([jnp.array([False]), x[1:] > x[:-1]])
    falls = jnp.concatenate([x[1:] < x[:-1], jnp.array([False])])
    starts = jnp.concatenate([jnp.array([True]), differs])
    ends = jnp.concatenate([differs, jnp.array([True])])
    # Carry each run's start index and "entered from below" flag along the run without a gather:
    # pack them as 2 * index + flag and take a running maximum (a running minimum for run ends).
    left = jax.lax.cummax(jnp.where(starts, 2 * idx + rises, -1))
    right = jax.lax.cummin(jnp.where(ends, 2 * idx + falls, 2 * n + 1), reverse=True)
    run_start, entered_rising = left // 2, (left % 2) == 1
    run_end, left_falling = right // 2, (right % 2) == 1
    return (idx == (run_start + run_end) // 2) & entered_rising & left_falling


def _sliding_max(p: Float[Array, " time"], half_width: int) -> Float[Array, " time"]:
    """max(p[j - half_width : j + half_width + 1]) for every j (van Herk / Gil-Werman)."""
    n = p.shape[0]
    size = 2 * half_width + 1
    padded_len = -(-(n + 2 * half_width) // size) * size
    fill = jnp.full((padded_len - n - half_width,), -jnp.inf, p.dtype)
    q = jnp.concatenate([jnp.full((half_width,), -jnp.inf, p.dtype), p, fill])
    blocks = q.reshape(-1, size)
    forward = jax.lax.cummax(blocks, axis=1).reshape(-1)
    backward = jax.lax.cummax(blocks, axis=1, reverse=True).reshape(-1)
    return jnp.maximum(backward[:n], forward[size - 1 : size - 1 + n])


def find_peaks(
    x: Float[Array, " time"], height: float, distance: int
) -> Bool[Array, " time"]:
    """Mask of the peaks ``scipy.signal.find_peaks(x, height=height, distance=distance)`` returns."""
    if distance < 1:
        raise ValueError(f"distance must be >= 1 sample, got {distance}")
    candidate = local_maxima(x) & (x >= height)
    if distance == 1:
        return candidate
    reach = distance - 1
    priority = jnp.where(candidate, x, -jnp.inf)
    index = jnp.arange(x.shape[0], dtype=jnp.float32)

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

    kept, _ = jax.lax.while_loop(
        undecided, one_round, (jnp.zeros_like(candidate), candidate)
    )
    return kept
