"""Order-by-order solution of the invariance equation in modal coordinates — one routine for the
equation-driven SSM and for the normal form of reduced dynamics.

In modal coordinates ``y`` (``x = x0 + P y``, ``P`` the eigenvectors) a vector field reads
``ẏ = Λ y + g(y)`` with ``g`` of degree >= 2. We look for an invariant manifold ``y = W(p)`` over ``d``
chosen modes (the index set ``E``) whose reduced dynamics are ``ṗ = R(p)``:

    Λ W(p) + g(W(p)) = DW(p) R(p),      W(p) = e_E p + O(|p|²),  R(p) = Λ_E p + O(|p|²).

At degree ``j`` the unknowns of degree ``j`` enter only linearly (Cabré, Fontich & de la Llave 2003;
Haller & Ponsioen 2016), for each component ``k`` and monomial ``p^m`` of degree ``j``:

    (⟨m, λ_E⟩ − λ_k) W_{k,m} + [k ∈ E] R_{k,m} = [g(W_{<j}) − DW_{<j} R_{<j}]_{k,m}.

Outside ``E`` the bracket must be nonzero — that is the nonresonance condition of the SSM, and a
vanishing one is reported as a resonance (no smooth SSM of that order). Inside ``E`` there is a choice:
``graph`` puts the whole term into ``R`` (W is a graph over the modal subspace), ``normal_form``
removes every term that is not resonant from ``R`` and keeps only resonant ones. With ``E`` = all
modes, ``normal_form`` is the classical Poincaré–Dulac normal form of the field, and ``W`` is the
near-identity change of coordinates ``y = W(w)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._polynomials import PolynomialBasis


class InvarianceSolution(NamedTuple):
    """``W`` ``[n, size]`` and ``R`` ``[d, size]`` in the ``d``-variable ``basis`` (modal coordinates)."""

    W: np.ndarray
    R: np.ndarray
    basis: PolynomialBasis
    resonant: np.ndarray  # [d, size] bool: which terms of R were kept as resonant


class ResonanceError(ValueError):
    """The invariance equation has no polynomial solution at some order: a resonance."""


def _is_resonant(delta: np.ndarray, eigenvalues: np.ndarray, criterion: str, tol: float) -> np.ndarray:
    if criterion == "imaginary":  # resonance judged on frequencies (SSMLearn's centre-manifold style)
        scale = max(float(np.max(np.abs(eigenvalues.imag))), 1e-300)
        return np.abs(delta.imag) <= tol * scale
    if criterion == "eigenvalues":
        scale = max(float(np.max(np.abs(eigenvalues))), 1e-300)
        return np.abs(delta) <= tol * scale
    raise ValueError(f"expected resonance criterion 'imaginary' or 'eigenvalues', got {criterion!r}")


def solve_invariance(eigenvalues, g, g_basis: PolynomialBasis, modes, order: int, *, style: str = "graph",
                     resonance: str = "imaginary", tol: float = 1e-8, ssm_tol: float = 1e-10) -> InvarianceSolution:
    """Solve the invariance equation order by order (see the module docstring).

    Args:
        eigenvalues: ``λ`` ``[n]`` (complex).
        g: the nonlinear part ``[n, g_basis.size]`` in modal coordinates (degree >= 2; lower ones ignored).
        g_basis: basis of ``g`` in ``n`` variables; terms above its degree are taken as zero (a polynomial
            field, or a Taylor expansion truncated on purpose).
        modes: the ``d`` indices ``E`` of the modes the manifold is tangent to.
        order: highest degree of ``W`` and ``R``.
        style: ``graph`` or ``normal_form`` (how the terms inside ``E`` are split, see module docstring).
        resonance: ``imaginary`` (terms whose frequency ⟨m, Im λ_E⟩ − Im λ_k vanishes are resonant, so a
            complex pair keeps its |w|²w terms and the damping shows in the normal form) or ``eigenvalues``
            (only exact resonances ⟨m, λ_E⟩ = λ_k).
        tol: relative tolerance of the resonance test inside ``E``.
        ssm_tol: relative size below which a denominator outside ``E`` is a resonance (error).

    Raises:
        ResonanceError: ⟨m, λ_E⟩ = λ_k for a mode ``k`` outside ``E``: no smooth SSM of that order.
    """
    lam = np.asarray(eigenvalues, complex)
    modes = [int(i) for i in modes]
    n, d = len(lam), len(modes)
    if style not in ("graph", "normal_form"):
        raise ValueError(f"expected style 'graph' or 'normal_form', got {style!r}")
    if g_basis.dim != n:
        raise ValueError(f"expected g over {n} variables, got {g_basis.dim}")
    basis = PolynomialBasis(d, order)
    lam_e = lam[modes]
    g = np.array(g, complex)
    g[:, g_basis.up_to(1)] = 0.0  # the linear part is Λ
    # g is used to degree min(order, its own): a polynomial field of low degree keeps the composition cheap
    g_trunc = PolynomialBasis(n, min(order, g_basis.max_order))
    g = g[:, g_basis.up_to(g_trunc.max_order)]
    W = np.zeros((n, basis.size), complex)
    R = np.zeros((d, basis.size), complex)
    resonant = np.zeros((d, basis.size), bool)
    lin = basis.of_degree(1)
    for a, k in enumerate(modes):
        W[k, lin[a]] = 1.0
        R[a, lin[a]] = lam_e[a]
    inside = {k: a for a, k in enumerate(modes)}
    scale = max(float(np.max(np.abs(lam))), 1e-300)
    for j in range(2, order + 1):
        idx = basis.of_degree(j)
        rhs = (g_trunc.compose(g, W, basis) - basis.directional(W, R))[:, idx]
        m_dot_lam = basis.exponents[idx] @ lam_e  # ⟨m, λ_E⟩
        for k in range(n):
            delta = m_dot_lam - lam[k]
            if k not in inside:
                bad = np.abs(delta) <= ssm_tol * scale
                if np.any(bad):
                    m = basis.exponents[idx][np.argmax(bad)]
                    raise ResonanceError(
                        f"resonance at order {j}: {' + '.join(f'{int(c)}·λ{modes[i]}' for i, c in enumerate(m) if c)}"
                        f" = λ{k} ({lam[k]:.6g}); no smooth spectral submanifold over modes {modes} of order {j}. "
                        f"Choose other modes or an order below {j}")
                W[k, idx] = rhs[k] / delta
                continue
            a = inside[k]
            if style == "graph":
                R[a, idx] = rhs[k]
                resonant[a, idx] = True
            else:
                res = _is_resonant(delta, lam_e, resonance, tol)
                R[a, idx] = np.where(res, rhs[k], 0.0)
                W[k, idx] = np.where(res, 0.0, rhs[k] / np.where(res, 1.0, delta))
                resonant[a, idx] = res
    return InvarianceSolution(W, R, basis, resonant)
