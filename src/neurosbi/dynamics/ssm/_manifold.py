"""The spectral submanifold as one result object, whichever way it was computed (from data or from
the equations): a graph over its tangent space and a polynomial vector field on it.

    chart:           η = Vᵀ (y − y*)                         (V orthonormal [p, d])
    parametrization: y = y* + V η + H φ_{2..M}(η),  Vᵀ H = 0
    reduced field:   η̇ = R(η) = Σ_{1 ≤ |m| ≤ K} r_m η^m

Prediction encodes an initial condition with the chart, integrates the reduced field and lifts; its
error is the normalized mean trajectory error of SSMLearn (Cenedese et al. 2022):
NMTE = mean_t ‖ŷ(t) − y(t)‖ / max_t ‖y(t)‖, with y measured from the fixed point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import jax.numpy as jnp
import numpy as np

from .._integrate import integrate
from .._polynomials import PolynomialBasis


@lru_cache(maxsize=64)
def polynomial_basis(dim: int, order: int) -> PolynomialBasis:
    """A shared basis (its product tables are built once per (dim, order))."""
    return PolynomialBasis(dim, order)


def oriented(basis) -> np.ndarray:
    """``basis`` ``[p, d]`` with each column's largest entry positive (eigen- and singular vectors have no sign
    of their own; this fixes one so results do not flip between runs)."""
    basis = np.asarray(basis, float)
    return basis * np.sign(basis[np.argmax(np.abs(basis), axis=0), np.arange(basis.shape[1])])


def _polynomial_field(eta, args):
    """``Σ_m r_m η^m`` with ``args = (coefficients [d, size], exponents [size, d])``: one compiled
    integrator serves every reduced field of the same size."""
    coeffs, exps = args
    return coeffs @ jnp.prod(eta[None, :] ** exps, axis=1)


@dataclass(frozen=True, eq=False)
class SpectralSubmanifold:
    """A ``d``-dimensional SSM of a fixed point ``y*`` in a ``p``-dimensional (observable) space.

    Attributes:
        fixed_point: ``y*`` ``[p]``.
        tangent: ``V`` ``[p, d]`` with orthonormal columns.
        graph: ``H`` ``[p, size]`` over the monomials of degree ``0..order`` in ``d`` variables (entries of
            degree below 2 are zero).
        order: degree of the parametrization.
        field: ``R`` ``[d, size]`` over the monomials of degree ``0..field_order`` (degree 0 is zero).
        field_order: degree of the reduced vector field.
        info: how it was computed (method, eigenvalues, fit errors, ridge, seconds ...).
        map_step: None for a vector field; else ``field`` is a map ``η_{k+1} = R(η_k)`` over this time step.
    """

    fixed_point: np.ndarray
    tangent: np.ndarray
    graph: np.ndarray
    order: int
    field: np.ndarray
    field_order: int
    info: dict = field(default_factory=dict)
    map_step: float | None = None

    @property
    def dim(self) -> int:
        return self.tangent.shape[1]

    @property
    def geometry_basis(self) -> PolynomialBasis:
        return polynomial_basis(self.dim, self.order)

    @property
    def field_basis(self) -> PolynomialBasis:
        return polynomial_basis(self.dim, self.field_order)

    def chart(self, y) -> np.ndarray:
        """Reduced coordinates ``η`` ``[N, d]`` of observations ``y`` ``[N, p]``."""
        return (np.asarray(y, float) - self.fixed_point) @ self.tangent

    def parametrization(self, eta) -> np.ndarray:
        """The point ``y`` ``[N, p]`` of the manifold over reduced coordinates ``eta`` ``[N, d]``."""
        eta = np.atleast_2d(np.asarray(eta, float))
        return self.fixed_point + eta @ self.tangent.T + self.geometry_basis(self.graph, eta)

    def reduced_field(self, eta) -> np.ndarray:
        """``η̇`` ``[N, d]`` at ``eta`` ``[N, d]`` (for a map: the next point ``η_{k+1}``)."""
        return self.field_basis(self.field, np.atleast_2d(np.asarray(eta, float)))

    @property
    def linear_part(self) -> np.ndarray:
        """The Jacobian ``[d, d]`` of the reduced field at the fixed point."""
        return self.field_basis.linear_part(self.field)

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of the reduced dynamics' linear part as continuous-time rates (slowest first); for a
        map, ``log(μ) / map_step`` of its multipliers ``μ``."""
        lam = np.linalg.eigvals(self.linear_part)
        if self.map_step is not None:
            lam = np.log(lam.astype(complex)) / self.map_step
        return lam[np.argsort(-lam.real, kind="stable")]

    def integrate(self, t, eta0, *, rtol: float = 1e-10, atol: float = 1e-12, max_steps: int = 200_000) -> np.ndarray:
        """The reduced trajectory ``[len(t), d]`` (or ``[B, len(t), d]`` for ``eta0`` ``[B, d]``) at times
        ``t`` (diffrax, float64; a map is iterated, ``t`` spaced by ``map_step``); NaN from where it failed
        (blow-up or ``max_steps``)."""
        if self.map_step is not None:
            return self._iterate(t, eta0)
        return integrate(_polynomial_field, eta0, t, args=(self.field, self.field_basis.exponents), rtol=rtol,
                         atol=atol, max_steps=max_steps)

    def _iterate(self, t, eta0) -> np.ndarray:
        t = np.asarray(t, float)
        if len(t) > 1 and not np.allclose(np.diff(t), self.map_step, rtol=1e-6):
            raise ValueError(f"a reduced map advances by {self.map_step}; predict on times spaced by it")
        eta = np.atleast_2d(np.asarray(eta0, float))
        out = np.full((len(eta), len(t), self.dim), np.nan)
        out[:, 0] = eta
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(1, len(t)):
                eta = self.field_basis(self.field, eta)
                eta[~np.all(np.isfinite(eta), axis=1)] = np.nan
                out[:, k] = eta
        return out[0] if np.ndim(eta0) == 1 else out

    def predict(self, t, y0) -> np.ndarray:
        """Encode ``y0`` ``[p]`` (or ``[B, p]``), integrate the reduced field over ``t``, lift: ``[len(t), p]``
        (or ``[B, len(t), p]``); NaN rows where the reduced model blew up."""
        y0 = np.asarray(y0, float)
        eta = self.integrate(t, self.chart(np.atleast_2d(y0)))  # [B, T, d]
        out = np.full(eta.shape[:2] + (self.fixed_point.size,), np.nan)
        ok = np.all(np.isfinite(eta), axis=2)
        out[ok] = self.parametrization(eta[ok])
        return out[0] if y0.ndim == 1 else out

    def trajectory_errors(self, trajectories) -> np.ndarray:
        """NMTE of each ``(t, y)`` trajectory predicted from its first sample (``inf`` if integration failed).
        Trajectories on one time grid are integrated together."""
        trajectories = [(np.asarray(t, float), np.asarray(y, float)) for t, y in trajectories]
        same_grid = all(t.shape == trajectories[0][0].shape and np.array_equal(t, trajectories[0][0])
                        for t, _ in trajectories)
        if same_grid:
            preds = self.predict(trajectories[0][0], np.stack([y[0] for _, y in trajectories]))
        else:
            preds = [self.predict(t, y[0]) for t, y in trajectories]
        errors = []
        for (_, y), pred in zip(trajectories, preds):
            if not np.all(np.isfinite(pred)):
                errors.append(np.inf)
                continue
            scale = np.max(np.linalg.norm(y - self.fixed_point, axis=1))
            errors.append(float(np.mean(np.linalg.norm(pred - y, axis=1)) / scale))
        return np.asarray(errors)

    def parametrization_errors(self, trajectories) -> np.ndarray:
        """The static error of the manifold: NMTE of lifting each trajectory's own chart coordinates."""
        errors = []
        for _, y in trajectories:
            y = np.asarray(y, float)
            lifted = self.parametrization(self.chart(y))
            scale = np.max(np.linalg.norm(y - self.fixed_point, axis=1))
            errors.append(float(np.mean(np.linalg.norm(lifted - y, axis=1)) / scale))
        return np.asarray(errors)
