"""Normal forms of the reduced dynamics and backbone curves.

The reduced field ``η̇ = R(η)`` is written in modal coordinates ``η = P z`` and brought to normal form
``ẇ = N(w)`` by a near-identity change ``z = T(w)`` solved order by order (:func:`solve_invariance`
with every mode inside, ``normal_form`` style). This is exact to the truncation order for a polynomial
field, so it replaces both the closed-form cubic of fastSSM and SSMLearn's least-squares conjugacy fit,
and it covers real, complex, mixed and odd-dimensional spectra alike: with the default ``imaginary``
resonance criterion a complex pair keeps its ``|w|^{2k} w`` terms, so in polar coordinates
``w = ρ e^{iθ}`` the normal form reads ``ρ̇ = ρ a(ρ)``, ``θ̇ = ω(ρ)``: the backbone (instantaneous damping
and frequency against amplitude). Real modes keep every term of their own (no frequency to separate
them); use ``resonance="eigenvalues"`` to remove all terms that are not exactly resonant instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._polynomials import PolynomialBasis
from ._equation import spectral_decomposition
from ._invariance import solve_invariance
from ._manifold import SpectralSubmanifold, polynomial_basis
from ._taylor import linear_map


@dataclass(frozen=True, eq=False)
class NormalForm:
    """``η = Re(P T(w))``, ``ẇ = N(w)``; ``T`` and ``N`` over ``basis`` (complex coefficients)."""

    eigenvalues: np.ndarray
    modal: np.ndarray
    transformation: np.ndarray
    field: np.ndarray
    resonant: np.ndarray
    order: int

    @property
    def basis(self) -> PolynomialBasis:
        return polynomial_basis(len(self.eigenvalues), self.order)

    def coefficients(self, tol: float = 1e-12) -> dict[str, complex]:
        """The nonzero terms of ``N``: ``{"w0: w0^2 w1": c, ...}`` (readable form)."""
        out = {}
        names = [f"w{i}" for i in range(len(self.eigenvalues))]
        for k in range(self.field.shape[0]):
            for i in np.flatnonzero(np.abs(self.field[k]) > tol):
                mono = " ".join(f"{n}^{e}" if e > 1 else n for n, e in zip(names, self.basis.exponents[i]) if e)
                out[f"{names[k]}: {mono}"] = complex(self.field[k, i])
        return out

    def reduced_coordinates(self, w) -> np.ndarray:
        """``η`` ``[N, d]`` of normal-form coordinates ``w`` ``[N, d]`` (conjugate pairs as pairs)."""
        z = self.basis(self.transformation, np.asarray(w, complex))
        return (z @ self.modal.T).real

    def pair(self, mode: int = 0) -> int:
        """Index of the conjugate partner of ``mode`` (raises for a real mode)."""
        lam = self.eigenvalues
        if abs(lam[mode].imag) < 1e-12 * max(abs(lam[mode]), 1.0):
            raise ValueError(f"mode {mode} is real (λ = {lam[mode].real:.6g}); backbones need a complex pair")
        return int(np.argmin(np.abs(lam - np.conj(lam[mode]))))

    def damping_frequency(self, rho, mode: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Instantaneous damping ``a(ρ) = Re(N_k/w_k)`` and frequency ``ω(ρ) = Im(N_k/w_k)`` (rad per time
        unit) of the pair at ``mode`` on its uncoupled limit (the other modes at zero)."""
        rho = np.asarray(rho, float).ravel()
        partner = self.pair(mode)
        w = np.zeros((len(rho), len(self.eigenvalues)), complex)
        w[:, mode] = rho
        w[:, partner] = rho
        rate = self.basis(self.field[mode:mode + 1], w)[:, 0] / np.where(rho == 0, 1.0, rho)
        rate = np.where(rho == 0, self.eigenvalues[mode], rate)
        return rate.real, rate.imag


def normal_form(ssm_or_field, *, order: int | None = None, resonance: str = "imaginary",
                tol: float = 1e-8) -> NormalForm:
    """The normal form of an SSM's reduced field (or of a field ``[d, size]`` over ``polynomial_basis(d, K)``).

    Args:
        ssm_or_field: a :class:`SpectralSubmanifold`, or polynomial coefficients of a field ``η̇ = R(η)``.
        order: degree of the normal form (default: the field's degree).
        resonance: ``imaginary`` or ``eigenvalues`` (see the module docstring).
        tol: relative tolerance of the resonance test.
    """
    if isinstance(ssm_or_field, SpectralSubmanifold):
        if ssm_or_field.map_step is not None:
            raise ValueError("normal forms here are of vector fields; this SSM's reduced dynamics are a map: fit "
                             "it with reduced='flow'")
        R, K = ssm_or_field.field, ssm_or_field.field_order
        d = ssm_or_field.dim
    else:
        R = np.asarray(ssm_or_field, float)
        d = R.shape[0]
        K = next((k for k in range(64) if polynomial_basis(d, k).size == R.shape[1]), None)
        if K is None:
            raise ValueError(f"expected field coefficients [d, size] over all monomials of degree <= K, got {R.shape}")
    order = K if order is None else int(order)
    basis_in = polynomial_basis(d, K)
    lam, P = spectral_decomposition(basis_in.linear_part(R))
    if len(set(np.round(lam, 10))) < d:
        raise ValueError(f"the linear part has repeated eigenvalues {lam}; a diagonal normal form needs distinct ones")
    nonlinear = R.astype(complex).copy()
    nonlinear[:, basis_in.up_to(1)] = 0.0
    zbasis = polynomial_basis(d, max(order, K))
    g = np.linalg.inv(P) @ basis_in.compose(nonlinear, linear_map(P, zbasis), zbasis)
    sol = solve_invariance(lam, g, zbasis, list(range(d)), order, style="normal_form", resonance=resonance, tol=tol)
    return NormalForm(eigenvalues=lam, modal=P, transformation=sol.W, field=sol.R, resonant=sol.resonant, order=order)


def _peak(values) -> float:
    """Maximum of a smooth periodic function sampled on a uniform grid: the vertex of the parabola through
    the largest sample and its neighbours (error O(h⁴) instead of the grid's O(h²))."""
    i = int(np.argmax(values))
    left, mid, right = values[i - 1], values[i], values[(i + 1) % len(values)]
    curvature = left - 2 * mid + right
    if curvature >= 0:
        return float(mid)
    return float(mid - 0.125 * (right - left) ** 2 / curvature)


def backbone(ssm: SpectralSubmanifold, rho, *, mode: int = 0, observable=0, num_phases: int = 128,
             form: NormalForm | None = None) -> dict:
    """Backbone curve of the pair at ``mode``: damping and frequency against the amplitude of an observable.

    The amplitude at normal-form radius ``ρ`` is ``max_θ |observable(y(ρ e^{iθ})) − observable(y*)|`` over
    the lifted periodic orbit of the uncoupled normal form (SSMLearn's definition); ``observable`` is an
    index into ``y`` or a function ``[N, p] -> [N]``.

    Returns ``{"rho", "amplitude", "damping", "frequency"}`` (frequency in rad per time unit).
    """
    form = form or normal_form(ssm)
    rho = np.asarray(rho, float).ravel()
    damping, frequency = form.damping_frequency(rho, mode)
    partner = form.pair(mode)
    theta = np.linspace(0, 2 * np.pi, num_phases, endpoint=False)
    read = (lambda y: y[:, observable]) if isinstance(observable, (int, np.integer)) else observable
    base = read(ssm.fixed_point[None])[0]
    amplitude = []
    for r in rho:
        w = np.zeros((num_phases, len(form.eigenvalues)), complex)
        w[:, mode] = r * np.exp(1j * theta)
        w[:, partner] = np.conj(w[:, mode])
        amplitude.append(_peak(np.abs(read(ssm.parametrization(form.reduced_coordinates(w))) - base)))
    return {"rho": rho, "amplitude": np.asarray(amplitude), "damping": damping, "frequency": frequency}
