"""Peak detection with the semantics of ``scipy.signal.find_peaks(x, height=h, distance=d)``.

scipy's distance rule is a sequential greedy pass (keep the highest peak, drop its neighbours closer
than ``d``, repeat), which JAX cannot express as one vectorised pass. We use the equivalent parallel
form: in each round every remaining peak that is the highest within ``d - 1`` samples on both sides
is kept, and every peak within ``d - 1`` samples of a kept one is dropped. A peak kept this way is
exactly one the greedy pass keeps (all higher neighbours were dropped by even higher ones), so the
rounds reproduce scipy's result. A chain of ever higher peaks needs one round per link; most rows of an
MPR batch are decided after two rounds, so ``find_peaks`` runs two rounds on every row and finishes
the undecided rows in small gathered groups (one slow row no longer sets the rounds for the batch).

Sliding maxima are computed by doubling (max over 1, 2, 4, ... samples, then two overlapping
windows): a few fused passes. ``lax.cummax`` (an associative scan) is several times slower on the
project's CPU and is used only for plateaus: when a batch has two equal neighbours at or above the
peak height.

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


def local_maxima(x: Float[Array, "... time"], height: float = -float("inf")) -> Bool[Array, "... time"]:
    """Mask of local maxima, plateau midpoints included, as scipy's ``_local_maxima_1d``.

    Only maxima at or above ``height`` are needed by callers that pass it, so the slower plateau
    path runs only when two equal neighbours at or above ``height`` exist somewhere in the batch.
    """
    if x.shape[-1] < 3:
        return jnp.zeros(x.shape, bool)
    has_plateau = jnp.any((x[..., 1:] == x[..., :-1]) & (x[..., 1:] >= height))
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


def _round(priority, kept, alive, reach):
    """One parallel greedy round on rows ``[rows, time]`` (see the module docstring)."""
    index = jnp.arange(priority.shape[-1], dtype=jnp.float32)
    p = jnp.where(alive, priority, -jnp.inf)
    maximal = alive & ~kept & (p >= _sliding_max(p, reach))
    # Maximal peaks within reach of each other have equal heights: the earlier one wins.
    earliest = -_sliding_max(jnp.where(maximal, -index, -jnp.inf), reach)
    kept = kept | (maximal & (earliest == index))
    near_kept = _sliding_max(jnp.where(kept, 1.0, 0.0).astype(priority.dtype), reach) > 0
    return kept, alive & (kept | ~near_kept)


def _resolve(priority, kept, alive, reach):
    def undecided(state):
        return jnp.any(state[1] & ~state[0])

    return jax.lax.while_loop(undecided, lambda s: _round(priority, *s, reach), (kept, alive))


_DENSE_ROUNDS = 2  # rounds run on every row; most rows are decided after them
_ROWS_PER_PASS = 64  # undecided rows gathered per later pass


def find_peaks(x: Float[Array, "... time"], height: float, distance: int) -> Bool[Array, "... time"]:
    """Mask of the peaks ``scipy.signal.find_peaks(x, height=height, distance=distance)`` returns.

    Chains of ever higher peaks closer than ``distance`` need one round each, and the longest chain
    of a batch would set the number of rounds for every row. So every row gets two rounds, then the
    rows still undecided are gathered 64 at a time and finished on their own.
    """
    if distance < 1:
        raise ValueError(f"distance must be >= 1 sample, got {distance}")
    candidate = local_maxima(x, height) & (x >= height)
    if distance == 1:
        return candidate
    reach = distance - 1
    shape = x.shape
    priority = jnp.where(candidate, x, -jnp.inf).reshape(-1, shape[-1])
    kept, alive = jnp.zeros_like(candidate).reshape(priority.shape), candidate.reshape(priority.shape)
    for _ in range(_DENSE_ROUNDS):
        kept, alive = _round(priority, kept, alive, reach)
    rows = priority.shape[0]
    per_pass = min(_ROWS_PER_PASS, rows)

    def rows_left(state):
        kept, alive = state
        return jnp.any(alive & ~kept)

    def finish_some(state):
        kept, alive = state
        todo = jnp.any(alive & ~kept, axis=-1)
        (idx,) = jnp.nonzero(todo, size=per_pass, fill_value=rows)
        take = jnp.minimum(idx, rows - 1)
        k, a = _resolve(priority[take], kept[take], alive[take], reach)
        return kept.at[idx].set(k, mode="drop"), alive.at[idx].set(a, mode="drop")

    kept, _ = jax.lax.while_loop(rows_left, finish_some, (kept, alive))
    return kept.reshape(shape)
