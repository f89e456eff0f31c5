"""Truncated multivariate polynomials: the algebra the spectral-submanifold code is written in.

A polynomial map ``R^d -> C^k`` of degree at most ``M`` is a coefficient array ``[k, n]`` over the ``n``
monomials of a :class:`PolynomialBasis`, graded by degree (degree 0 first, then 1, ...), lexicographic
within a degree (``x1^2, x1 x2, x2^2``). Products and compositions are truncated at ``M``, which is exact
for what the order-by-order solvers need: the coefficients of degree ``<= M`` of a product or composite
depend only on the coefficients of degree ``<= M`` of its factors.

Why not sympy or numpy.polynomial: sympy is symbolic and orders of magnitude slower on the dense
numerical series here (hundreds of monomials, complex coefficients, one solve per order); numpy's
polynomial classes are one-dimensional. The algebra is ~150 lines of index tables.
"""

from __future__ import annotations

import itertools
import math
from functools import cached_property

import numpy as np
import scipy.sparse as sp


def monomial_exponents(dim: int, max_order: int, min_order: int = 0) -> np.ndarray:
    """Exponents ``[n, dim]`` of every monomial in ``dim`` variables of degree ``min_order .. max_order``,
    graded by degree and lexicographic (descending powers of the first variable) within a degree."""
    rows = []
    for order in range(min_order, max_order + 1):
        for combo in itertools.combinations_with_replacement(range(dim), order):
            e = np.zeros(dim, int)
            for i in combo:
                e[i] += 1
            rows.append(e)
    return np.asarray(rows, int).reshape(-1, dim)


class PolynomialBasis:
    """All monomials of degree ``0 .. max_order`` in ``dim`` variables, with the tables for truncated
    products, derivatives and evaluation."""

    def __init__(self, dim: int, max_order: int):
        if dim < 1 or max_order < 0:
            raise ValueError(f"expected dim >= 1 and max_order >= 0, got dim={dim}, max_order={max_order}")
        self.dim, self.max_order = int(dim), int(max_order)
        self.exponents = monomial_exponents(self.dim, self.max_order)
        self.degrees = self.exponents.sum(1)
        self.index = {tuple(e): i for i, e in enumerate(self.exponents)}

    @property
    def size(self) -> int:
        return len(self.exponents)

    def of_degree(self, order: int) -> np.ndarray:
        """Indices of the monomials of degree ``order``."""
        return np.flatnonzero(self.degrees == order)

    def up_to(self, order: int, start: int = 0) -> np.ndarray:
        """Indices of the monomials of degree ``start .. order``."""
        return np.flatnonzero((self.degrees >= start) & (self.degrees <= order))

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, x) -> np.ndarray:
        """The monomials at points ``x`` ``[N, dim]``: ``[N, size]`` (real or complex)."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected points of shape [N, {self.dim}], got {x.shape}")
        powers = x[:, :, None] ** np.arange(self.max_order + 1)  # [N, dim, M+1]
        out = np.ones((x.shape[0], self.size), dtype=np.result_type(x.dtype, float))
        for i in range(self.dim):
            out = out * powers[:, i, self.exponents[:, i]]
        return out

    def __call__(self, coeffs, x) -> np.ndarray:
        """The polynomial map ``coeffs`` ``[k, size]`` at points ``x`` ``[N, dim]``: ``[N, k]``."""
        return self.evaluate(x) @ np.asarray(coeffs).T

    # ------------------------------------------------------------------ algebra
    @cached_property
    def _product_table(self):
        """Pairs (i, j) with deg i + deg j <= M and a sparse map from pairs to the product monomial."""
        ii, jj, kk = [], [], []
        for i, ei in enumerate(self.exponents):
            for j, ej in enumerate(self.exponents):
                if self.degrees[i] + self.degrees[j] <= self.max_order:
                    ii.append(i)
                    jj.append(j)
                    kk.append(self.index[tuple(ei + ej)])
        scatter = sp.csr_matrix((np.ones(len(kk)), (np.arange(len(kk)), kk)), shape=(len(kk), self.size))
        return np.asarray(ii), np.asarray(jj), scatter

    def multiply(self, a, b) -> np.ndarray:
        """Truncated product of polynomials ``a`` and ``b`` (``[..., size]`` each, broadcast)."""
        ii, jj, scatter = self._product_table
        a, b = np.asarray(a), np.asarray(b)
        terms = a[..., ii] * b[..., jj]
        shape = terms.shape[:-1]
        flat = terms.reshape(-1, terms.shape[-1])
        return np.asarray((scatter.T @ flat.T).T).reshape(*shape, self.size)

    @cached_property
    def _derivative_tables(self):
        tables = []
        for i in range(self.dim):
            src, dst, factor = [], [], []
            for k, e in enumerate(self.exponents):
                if e[i] > 0:
                    lowered = e.copy()
                    lowered[i] -= 1
                    src.append(k)
                    dst.append(self.index[tuple(lowered)])
                    factor.append(e[i])
            tables.append((np.asarray(src, int), np.asarray(dst, int), np.asarray(factor, float)))
        return tables

    def derivative(self, coeffs, variable: int) -> np.ndarray:
        """∂/∂x_variable of ``coeffs`` ``[..., size]`` (degree drops by one; same basis)."""
        src, dst, factor = self._derivative_tables[variable]
        coeffs = np.asarray(coeffs)
        out = np.zeros_like(coeffs, dtype=np.result_type(coeffs.dtype, float))
        out[..., dst] = coeffs[..., src] * factor
        return out

    def directional(self, coeffs, field) -> np.ndarray:
        """``D coeffs · field``: the derivative of the map ``coeffs`` ``[k, size]`` along the vector field
        ``field`` ``[dim, size]`` (both polynomials in these variables), truncated: ``[k, size]``."""
        return sum(self.multiply(self.derivative(coeffs, i), np.asarray(field)[i]) for i in range(self.dim))

    def compose(self, coeffs, inner, inner_basis: PolynomialBasis) -> np.ndarray:
        """``coeffs ∘ inner``: ``coeffs`` ``[k, size]`` in this basis's ``dim`` variables, ``inner``
        ``[dim, inner_basis.size]`` a map from ``inner_basis.dim`` variables; the result ``[k,
        inner_basis.size]`` is truncated at ``inner_basis.max_order``. Terms of ``coeffs`` above that degree
        contribute nothing when ``inner`` has no constant term."""
        inner = np.asarray(inner)
        if inner.shape != (self.dim, inner_basis.size):
            raise ValueError(f"expected an inner map of shape {(self.dim, inner_basis.size)}, got {inner.shape}")
        dtype = np.result_type(np.asarray(coeffs).dtype, inner.dtype, float)
        monomials = np.zeros((self.size, inner_basis.size), dtype)
        monomials[0, 0] = 1.0
        for k in range(1, self.size):  # x^m = x^(m - e_i) · x_i, the lower monomial already built
            e = self.exponents[k]
            i = int(np.flatnonzero(e)[0])
            lower = e.copy()
            lower[i] -= 1
            monomials[k] = inner_basis.multiply(monomials[self.index[tuple(lower)]], inner[i])
        return np.asarray(coeffs) @ monomials

    def linear_part(self, coeffs) -> np.ndarray:
        """The Jacobian at 0 of the map ``coeffs`` ``[k, size]``: ``[k, dim]``."""
        return np.asarray(coeffs)[:, self.of_degree(1)]

    def factorials(self) -> np.ndarray:
        """``m!`` = ``Π_i m_i!`` per monomial (Taylor coefficient = derivative / m!)."""
        return np.asarray([math.prod(math.factorial(int(v)) for v in e) for e in self.exponents], float)
