"""Taylor coefficients of a JAX vector field at a point, by forward-mode automatic differentiation in
float64, as a coefficient array over a :class:`PolynomialBasis`; and series reversion of a polynomial
map with invertible linear part."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._polynomials import PolynomialBasis

MAX_TENSOR_ENTRIES = 50_000_000  # n^(order + 1) derivative entries: ~400 MB of float64


def taylor_coefficients(f: Callable, x0, order: int) -> tuple[np.ndarray, PolynomialBasis]:
    """Coefficients ``[n, size]`` of ``f(x0 + u)`` in the monomials of ``u`` up to ``order`` (float64).

    ``f`` maps one state ``[n]`` to its time derivative ``[n]`` and is written in JAX. The k-th
    derivative tensor is taken by nesting ``jax.jacfwd`` k times (``n^(k+1)`` entries); the coefficient
    of ``u^m`` is the tensor entry at the sorted index tuple of ``m`` divided by ``m!``.
    """
    x0 = np.asarray(x0, np.float64).ravel()
    n = x0.size
    if n ** (order + 1) > MAX_TENSOR_ENTRIES:
        raise ValueError(f"Taylor expansion of a {n}-dimensional field to order {order} needs {n ** (order + 1):.2g} "
                         f"derivative entries (limit {MAX_TENSOR_ENTRIES:.0e}); lower the order")
    basis = PolynomialBasis(n, order)
    coeffs = np.zeros((n, basis.size))
    with jax.enable_x64(True):
        x = jnp.asarray(x0, jnp.float64)
        g = lambda u: jnp.asarray(f(u), jnp.float64)  # noqa: E731
        value = np.asarray(g(x))
        if value.shape != (n,):
            raise ValueError(f"expected the vector field to map a state [{n}] to [{n}], got {value.shape}")
        coeffs[:, 0] = value
        for k in range(1, order + 1):
            g = jax.jacfwd(g)
            tensor = np.asarray(g(x))  # [n, n, ..., n] (k + 1 axes)
            for i in basis.of_degree(k):
                idx = tuple(np.repeat(np.arange(n), basis.exponents[i]))
                coeffs[:, i] = tensor[(slice(None), *idx)]
    return coeffs / basis.factorials()[None], basis


def linear_map(matrix, basis: PolynomialBasis) -> np.ndarray:
    """The linear map ``u -> matrix @ u`` as coefficients ``[rows, basis.size]`` over ``basis``."""
    matrix = np.asarray(matrix)
    out = np.zeros((matrix.shape[0], basis.size), matrix.dtype)
    out[:, basis.of_degree(1)] = matrix
    return out


def revert_series(coeffs, basis: PolynomialBasis) -> np.ndarray:
    """The inverse ``q`` of ``p -> C(p)`` (``C(0) = 0``, invertible linear part) to ``basis.max_order``:
    ``C(q(η)) = η`` up to that order. Fixed-point iteration ``q = L⁻¹(η − N(q))``, exact one degree
    per sweep."""
    coeffs = np.asarray(coeffs)
    lin = basis.linear_part(coeffs)
    inv = np.linalg.inv(lin)
    nonlinear = coeffs.copy()
    nonlinear[:, basis.up_to(1)] = 0.0
    identity = linear_map(np.eye(basis.dim), basis)
    q = linear_map(inv, basis).astype(np.result_type(coeffs.dtype, float))
    for _ in range(basis.max_order):
        q = inv @ (identity - basis.compose(nonlinear, q, basis))
    return q
