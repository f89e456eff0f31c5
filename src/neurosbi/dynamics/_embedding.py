"""Delay embedding of few observables (Takens; the 2m + 1 rule of Whitney) and finite-difference
time derivatives of sampled trajectories.

Trajectories are ``(t, y)`` pairs with ``t`` ``[T]`` uniformly spaced and ``y`` ``[T, p]`` (time first);
a list of them is what the spectral-submanifold fits take.
"""

from __future__ import annotations

import math

import numpy as np


def as_trajectory(t, y) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, float).ravel()
    y = np.asarray(y, float)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != t.shape[0]:
        raise ValueError(f"expected a trajectory as t [T] and y [T, p] with the same T, got t {t.shape}, y {y.shape}")
    return t, y


def embedding_copies(ssm_dim: int, num_observables: int, over_embed: int = 0) -> int:
    """How many delayed copies of ``num_observables`` signals embed a ``ssm_dim``-dimensional manifold:
    ``ceil((2 ssm_dim + 1) / num_observables) + over_embed`` (Whitney/Takens)."""
    return math.ceil((2 * ssm_dim + 1) / num_observables) + over_embed


def delay_embed(trajectories, copies: int, shift_steps: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each trajectory ``(t, y)`` as ``(t', [y(t), y(t + Δ), ..., y(t + (copies - 1) Δ)])`` with
    Δ = ``shift_steps`` samples; ``t'`` is the time of the first copy, so each embedded trajectory is
    ``(copies - 1) shift_steps`` samples shorter.

    Raises:
        ValueError: a trajectory too short for the embedding (names the index, the length needed).
    """
    if copies < 1 or shift_steps < 1:
        raise ValueError(f"expected copies >= 1 and shift_steps >= 1, got {copies}, {shift_steps}")
    span = (copies - 1) * shift_steps
    out = []
    for n, (t, y) in enumerate(trajectories):
        t, y = as_trajectory(t, y)
        if len(t) <= span:
            raise ValueError(f"trajectory {n} has {len(t)} samples; a delay embedding with {copies} copies "
                             f"shifted by {shift_steps} needs more than {span}: record longer or embed less")
        length = len(t) - span
        out.append((t[:length], np.concatenate([y[k * shift_steps:k * shift_steps + length] for k in range(copies)],
                                               axis=1)))
    return out


def central_difference_weights(half_width: int) -> np.ndarray:
    """Weights ``w[-h..h]`` of the central first-derivative stencil of accuracy order ``2 h``."""
    offsets = np.arange(-half_width, half_width + 1)
    powers = offsets[None, :] ** np.arange(2 * half_width + 1)[:, None]  # Vandermonde: Σ w_j j^k = δ_k1
    rhs = np.zeros(2 * half_width + 1)
    rhs[1] = 1.0
    return np.linalg.solve(powers.astype(float), rhs)


def time_derivative(t, y, accuracy: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t', y', dy/dt)``: central differences of order ``accuracy`` (even) on a uniform grid; the
    ``accuracy / 2`` samples at each end, where the stencil does not fit, are dropped from all three."""
    if accuracy < 2 or accuracy % 2:
        raise ValueError(f"expected an even accuracy >= 2, got {accuracy}")
    t, y = as_trajectory(t, y)
    h = accuracy // 2
    if len(t) < 2 * h + 2:
        raise ValueError(f"a trajectory of {len(t)} samples is too short for derivatives of accuracy {accuracy} "
                         f"(needs at least {2 * h + 2}): record longer or lower the accuracy")
    dt = np.diff(t)
    if np.ptp(dt) > 1e-9 * max(abs(dt.mean()), 1e-300):
        raise ValueError("expected uniformly sampled times; resample the trajectory onto a uniform grid first")
    w = central_difference_weights(h)
    n = len(t) - 2 * h
    dy = sum(w[j] * y[j:j + n] for j in range(2 * h + 1)) / dt.mean()
    return t[h:h + n], y[h:h + n], dy
