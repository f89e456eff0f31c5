"""Profiles and Hessians against a quadratic's closed forms (issue 7, scope 4)."""

import jax.numpy as jnp
import numpy as np

from neurosbi.diagnostics import identifiability

MU = np.array([0.7, -4.6, 14.5])
A = np.array([[4.0, 1.5, 0.3], [1.5, 2.0, -0.4], [0.3, -0.4, 1.0]])
BOUNDS = (np.array([0.1, -10.0, 5.0]), np.array([5.0, -3.0, 20.0]))


def quadratic(theta):
    d = theta - MU
    return 0.5 * jnp.einsum("bi,ij,bj->b", d, A, d)


def test_profile_of_a_quadratic_is_its_parabola():
    cov = np.linalg.inv(A)
    grid = MU[1] + np.linspace(-1.0, 1.0, 9)
    prof = identifiability.profile(quadratic, MU, BOUNDS, 1, grid)
    # minimizing over the others leaves 0.5 (x - mu)^2 / (A^-1)_ii
    np.testing.assert_allclose(prof.values, 0.5 * (grid - MU[1]) ** 2 / cov[1, 1], atol=1e-8)
    # the others move along the conditional mean: mu_rest - A_rr^-1 A_ri (x - mu_i)
    rest = [0, 2]
    slope = -np.linalg.solve(A[np.ix_(rest, rest)], A[rest, 1])
    np.testing.assert_allclose(prof.others[:, rest], MU[rest] + np.outer(grid - MU[1], slope), atol=1e-5)


def test_slice_of_a_quadratic_and_its_hessian():
    grid = MU[0] + np.linspace(-0.5, 0.5, 5)
    sl = identifiability.profile(quadratic, MU, BOUNDS, 0, grid, optimize=False)
    np.testing.assert_allclose(sl.values, 0.5 * A[0, 0] * (grid - MU[0]) ** 2, atol=1e-12)
    np.testing.assert_allclose(identifiability.hessian(quadratic, MU), A, atol=1e-12)
