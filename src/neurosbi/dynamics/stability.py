"""Linear stability of the Montbrió–Pazó–Roxin model: fixed points, eigenvalues, the phase diagram.

Fixed points solve dr/dt = 0, so r* = −Δ / (2π v*), and dv/dt = 0, which with that r* becomes the
quartic (reference §2.1)

    v⁴ + (η + I) v² − (J Δ / 2π) v − Δ²/4 = 0.

Only roots with v* < 0 give a rate r* > 0. The Jacobian in (v, r) is [[2v, J − 2π² r], [2r, 2v]],
so the eigenvalues are λ = 2v* ± √(2 r* (J − 2π² r*)): a node when the root is real, a focus when
it is imaginary, unstable when Re λ > 0. Because the model is invariant under v → √Δ v, r → √Δ r,
t → t/√Δ, η → Δ η, J → √Δ J, the regimes depend on (η/Δ, J/√Δ) only (Montbrió et al. 2015): that is
the plane of the phase diagram. The quartic is solved by ``numpy.roots`` (companion-matrix
eigenvalues), batched here over a grid with ``numpy.linalg.eigvals`` on stacked companion matrices.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# regime labels of a parameter point (single stable node, single stable focus, two stable fixed points)
REGIMES = ("node", "focus", "bistable", "other")


@dataclasses.dataclass(frozen=True)
class FixedPoint:
    v: float
    r: float
    eigenvalues: np.ndarray
    kind: str  # "stable node" | "stable focus" | "saddle" | "unstable node" | "unstable focus"

    @property
    def stable(self) -> bool:
        return self.kind.startswith("stable")


def _quartic_roots(delta, eta, J, current):
    """Roots [..., 4] (complex) of the fixed-point quartic, batched by companion matrices (broadcast inputs)."""
    # monic quartic v^4 + a2 v^2 + a1 v + a0
    a2, a1, a0 = eta + current, -J * delta / (2 * np.pi), -(delta**2) / 4
    companion = np.zeros(delta.shape + (4, 4))
    companion[..., 0, 1] = -a2
    companion[..., 0, 2] = -a1
    companion[..., 0, 3] = -a0
    companion[..., 1, 0] = companion[..., 2, 1] = companion[..., 3, 2] = 1.0
    return np.linalg.eigvals(companion)


def mpr_eigenvalues(v, r, J):
    """Eigenvalues ``[..., 2]`` (complex) of the Jacobian at (v, r): 2v ± √(2r(J − 2π² r))."""
    v, r, J = (np.asarray(a, dtype=np.float64) for a in (v, r, J))
    root = np.sqrt((2 * r * (J - 2 * np.pi**2 * r)).astype(complex))
    return np.stack([2 * v + root, 2 * v - root], axis=-1)


def _kind(eigenvalues, tol=1e-12) -> str:
    re, im = eigenvalues.real, eigenvalues.imag
    focus = np.abs(im).max() > tol
    if np.all(re < 0):
        return "stable focus" if focus else "stable node"
    if np.all(re > 0):
        return "unstable focus" if focus else "unstable node"
    return "saddle"


def _fixed_points(delta, eta, J, current, tol=1e-9):
    """``(v, r)`` ``[..., 4]`` of the quartic's roots, NaN where a root is complex or gives r ≤ 0."""
    delta, eta, J, current = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (delta, eta, J, current)))
    roots = _quartic_roots(delta, eta, J, current)
    real = np.abs(roots.imag) <= tol * np.maximum(1.0, np.abs(roots.real))
    v = np.where(real & (roots.real < 0), roots.real, np.nan)
    return v, -delta[..., None] / (2 * np.pi * v)


def mpr_fixed_points(delta: float, eta: float, J: float, current: float = 0.0, *, tol: float = 1e-9) -> list[FixedPoint]:
    """Every fixed point with r > 0 of the MPR model at one parameter point, sorted by rate."""
    if not delta > 0:
        raise ValueError(f"delta must be > 0 (the width of the excitability distribution), got {delta}")
    vs, rs = _fixed_points(delta, eta, J, current, tol)
    points = []
    for v, r in zip(vs[np.isfinite(vs)], rs[np.isfinite(vs)]):
        eig = mpr_eigenvalues(v, r, J)
        points.append(FixedPoint(float(v), float(r), eig, _kind(eig)))
    return sorted(points, key=lambda p: p.r)


def mpr_regime(delta, eta, J, current=0.0) -> np.ndarray:
    """Regime label (index into ``REGIMES``) of each parameter point, batched over arrays.

    node: one stable fixed point, a node; focus: one stable fixed point, a focus; bistable: two stable
    fixed points; other: anything else (none stable, which the MPR model does not show with Δ > 0).
    """
    v, r = _fixed_points(delta, eta, J, current)
    eig = mpr_eigenvalues(v, r, np.broadcast_to(J, v.shape[:-1])[..., None])
    stable = np.all(eig.real < 0, axis=-1) & np.isfinite(v)
    focus = np.abs(eig.imag).max(axis=-1) > 1e-12
    n_stable = stable.sum(axis=-1)
    stable_focus = (stable & focus).any(axis=-1)
    return np.select([n_stable == 2, (n_stable == 1) & stable_focus, n_stable == 1], [2, 1, 0], default=3)


def mpr_phase_diagram(eta_over_delta, J_over_sqrt_delta, current: float = 0.0) -> np.ndarray:
    """Regimes on the grid ``[len(J_over_sqrt_delta), len(eta_over_delta)]`` of the scaled plane (Δ = 1;
    ``current`` is then in units of Δ too)."""
    eta, J = np.meshgrid(np.asarray(eta_over_delta, float), np.asarray(J_over_sqrt_delta, float))
    return mpr_regime(np.ones_like(eta), eta, J, current)
