"""Equation-driven SSM: the manifold and its reduced dynamics as Taylor expansions of a vector field
written in JAX, solved order by order from the invariance equation (Haller & Ponsioen 2016; the
parametrization method of Cabré, Fontich & de la Llave), returned as the same
:class:`SpectralSubmanifold` as the data-driven fit so the two compare on one model.

Steps: Jacobian and eigen-decomposition at the fixed point; Taylor coefficients of the field by nested
forward-mode differentiation (float64); the invariance equation in modal coordinates
(:func:`solve_invariance`, graph style); then a change of chart from the modal parameter ``p`` to the
orthonormal tangent coordinates ``η = Vᵀ(x − x*)`` by series reversion, so that the result is a graph
over its tangent space like the data-driven one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from .._polynomials import PolynomialBasis
from ._invariance import solve_invariance
from ._manifold import SpectralSubmanifold, oriented, polynomial_basis
from ._taylor import linear_map, revert_series, taylor_coefficients


def spectral_decomposition(jacobian) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (slowest first: decreasing real part, a conjugate pair with positive imaginary part
    first) and right eigenvectors of ``jacobian``."""
    lam, vec = np.linalg.eig(np.asarray(jacobian, float))
    order = np.lexsort((-lam.imag, np.round(-lam.real, 12)))
    return lam[order], vec[:, order]


def choose_modes(eigenvalues, dim: int | None = None, modes: Sequence[int] | None = None) -> list[int]:
    """The modes of the SSM: ``modes`` as given, or the ``dim`` slowest; a complex pair is never split."""
    lam = np.asarray(eigenvalues)
    if modes is None:
        if dim is None:
            raise ValueError("give the SSM dimension (dim) or its modes (indices into the slowest-first spectrum)")
        modes = list(range(dim))
    modes = [int(i) for i in modes]
    for i in modes:
        if not 0 <= i < len(lam):
            raise ValueError(f"mode {i} is not one of the {len(lam)} modes")
        if abs(lam[i].imag) > 1e-12 * max(abs(lam[i]), 1.0):
            partner = int(np.argmin(np.abs(lam - np.conj(lam[i]))))
            if partner not in modes:
                raise ValueError(f"mode {i} (λ = {lam[i]:.6g}) is one of a complex pair; include its conjugate "
                                 f"(mode {partner}) too, e.g. dim={max(modes + [partner]) + 1}")
    return modes


def check_stable(eigenvalues, what: str = "fixed point") -> None:
    lam = np.asarray(eigenvalues)
    if np.any(lam.real >= 0):
        raise ValueError(f"the {what} is not stable (eigenvalues with Re λ >= 0: "
                         f"{', '.join(f'{v:.4g}' for v in lam[lam.real >= 0])}); spectral submanifolds here are "
                         "built at stable fixed points: move to a stable one (e.g. another input) or pass "
                         "allow_unstable=True if you know the manifold you ask for exists")


def tangent_basis(vectors) -> np.ndarray:
    """An orthonormal real basis ``[n, d]`` of the span of the real and imaginary parts of ``vectors``."""
    vectors = np.asarray(vectors)
    real = np.concatenate([vectors.real, vectors.imag], axis=1)
    u = np.linalg.svd(real, full_matrices=False)[0]
    return oriented(u[:, : vectors.shape[1]])


def ssm_from_vector_field(f: Callable, fixed_point, *, dim: int | None = None, modes: Sequence[int] | None = None,
                          order: int = 5, field_degree: int | None = None, tangent=None,
                          allow_unstable: bool = False, fixed_point_tol: float = 1e-8) -> SpectralSubmanifold:
    """The SSM of ``ẋ = f(x)`` at ``fixed_point`` tangent to the ``dim`` slowest modes (or ``modes``).

    Args:
        f: the vector field of one state, ``[n] -> [n]``, in JAX (differentiated to ``order``).
        fixed_point: ``x*`` with ``f(x*) = 0``.
        dim, modes: the SSM's dimension (slowest modes) or the mode indices in the slowest-first spectrum.
        order: degree of the parametrization and of the reduced field.
        field_degree: degree of the Taylor expansion of ``f`` (default ``order``); a polynomial field of degree
            3 needs only 3, which keeps large systems cheap (the k-th derivative tensor has ``n^(k+1)`` entries).
        tangent: an orthonormal basis ``[n, d]`` of the tangent space to use as chart (default: from the
            real and imaginary parts of the modal eigenvectors); must span the same subspace.

    Raises:
        ValueError: ``x*`` is not a fixed point, it is not stable, a complex pair is split.
        ResonanceError: a resonance ⟨m, λ_E⟩ = λ_k with a mode outside the SSM: no smooth SSM.
    """
    start = time.perf_counter()
    x0 = np.asarray(fixed_point, np.float64).ravel()
    taylor, xbasis = taylor_coefficients(f, x0, order if field_degree is None else min(order, field_degree))
    residual = float(np.max(np.abs(taylor[:, 0])))
    if residual > fixed_point_tol * max(1.0, float(np.max(np.abs(x0)))):
        raise ValueError(f"|f(x*)| = {residual:.3g}: the point given is not a fixed point; find one first "
                         "(e.g. scipy.optimize.root on the field)")
    lam, vec = spectral_decomposition(xbasis.linear_part(taylor))
    if not allow_unstable:
        check_stable(lam)
    modes = choose_modes(lam, dim, modes)
    n = len(x0)
    vec_inv = np.linalg.inv(vec)
    # g(y) = P⁻¹ f(x* + P y): compose the Taylor polynomial with the modal map
    ybasis = PolynomialBasis(n, xbasis.max_order)
    nonlinear = taylor.copy()
    nonlinear[:, xbasis.up_to(1)] = 0.0
    g = vec_inv @ xbasis.compose(nonlinear, linear_map(vec, ybasis), ybasis)
    sol = solve_invariance(lam, g, ybasis, modes, order, style="graph")
    # chart change p -> η = Vᵀ (x − x*): C(p) = Vᵀ P W(p), p = C⁻¹(η)
    physical = vec @ sol.W  # x − x* as a polynomial in p
    V = tangent_basis(vec[:, modes]) if tangent is None else _check_tangent(tangent, vec[:, modes])
    pbasis = sol.basis
    chart = V.T @ physical
    inverse = revert_series(chart, pbasis)
    x_of_eta = pbasis.compose(physical, inverse, pbasis)
    field = pbasis.compose(pbasis.directional(chart, sol.R), inverse, pbasis)
    imag = max(float(np.max(np.abs(x_of_eta.imag))), float(np.max(np.abs(field.imag))))
    graph = x_of_eta.real.copy()
    graph[:, pbasis.up_to(1)] = 0.0
    basis = polynomial_basis(len(modes), order)
    return SpectralSubmanifold(
        fixed_point=x0, tangent=V, graph=graph, order=order, field=field.real, field_order=order,
        info={"method": "equation", "eigenvalues": [complex(v) for v in lam], "modes": modes,
              "spectral_quotient": _spectral_quotient(lam, modes), "max_imaginary_residue": imag,
              "monomials": basis.size, "seconds": time.perf_counter() - start})


def _check_tangent(tangent, vectors) -> np.ndarray:
    V = np.asarray(tangent, float)
    if V.shape != (vectors.shape[0], vectors.shape[1]):
        raise ValueError(f"expected a tangent basis of shape {(vectors.shape[0], vectors.shape[1])}, got {V.shape}")
    if not np.allclose(V.T @ V, np.eye(V.shape[1]), atol=1e-10):
        raise ValueError("the tangent basis must have orthonormal columns (use np.linalg.qr)")
    span = tangent_basis(vectors)
    if np.linalg.norm(span - V @ (V.T @ span)) > 1e-8:
        raise ValueError("the tangent basis given does not span the modal subspace of the chosen modes")
    return V


def _spectral_quotient(lam, modes) -> float | None:
    """Int(min Re λ_outside / max Re λ_inside): the SSM is unique among manifolds this smooth."""
    outside = [i for i in range(len(lam)) if i not in modes]
    if not outside:
        return None
    return float(np.floor(min(lam[outside].real) / max(lam[modes].real)))
