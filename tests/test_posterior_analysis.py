"""Posterior analysis against densities with known answers."""

import jax
import jax.numpy as jnp
import numpy as np

from neurosbi.diagnostics import conditional_correlations, conditional_density, high_probability_path, sensitivity

COV = np.array([[1.0, 0.6, 0.2], [0.6, 2.0, -0.5], [0.2, -0.5, 0.5]])
PREC = np.linalg.inv(COV)


def _gaussian(theta):
    return -0.5 * jnp.einsum("...i,ij,...j->...", theta, jnp.asarray(PREC, jnp.float32), theta)


def test_conditional_correlations_are_the_partial_correlations():
    """For a Gaussian, the correlation of (i, j) with the rest fixed is -P_ij / sqrt(P_ii P_jj)."""
    low, high = -6 * np.sqrt(np.diag(COV)), 6 * np.sqrt(np.diag(COV))
    got = conditional_correlations(_gaussian, np.zeros((1, 3)), low, high, resolution=80)
    d = np.sqrt(np.diag(PREC))
    want = -PREC / np.outer(d, d)
    np.fill_diagonal(want, 1.0)
    np.testing.assert_allclose(got, want, atol=0.01)
    grids, p = conditional_density(_gaussian, np.zeros(3), (1,), low, high, resolution=200)
    var = (p * grids[0] ** 2).sum()  # conditional variance of theta_1 given the others = 1 / P_11
    np.testing.assert_allclose(var, 1 / PREC[1, 1], rtol=0.01)


def _ring(theta):
    """A ring of radius 2: the two points (2, 0) and (-2, 0) are joined along it, not through 0."""
    r = jnp.sqrt(jnp.sum(theta**2, axis=-1) + 1e-12)
    return -0.5 * ((r - 2.0) / 0.15) ** 2


def test_path_between_two_modes_stays_in_high_density():
    path = high_probability_path(_ring, [2.0, 0.0], [-2.0, 0.0], low=np.array([-3.0, -3.0]),
                                 high=np.array([3.0, 3.0]), num_points=30, steps=1500)
    radius = np.linalg.norm(path.points, axis=1)
    assert path.straight_log_prob.min() < -80  # the straight line crosses the hole
    assert path.log_prob.min() > -3.0, path.log_prob.min()  # the path goes round it
    assert np.all(np.abs(radius - 2.0) < 0.4)
    assert np.all(np.abs(path.points) <= 3.0)
    np.testing.assert_allclose(path.points[[0, -1]], [[2.0, 0.0], [-2.0, 0.0]], atol=1e-4)


def test_sensitivity_recovers_the_precision_eigenvectors():
    sens = sensitivity(_gaussian, np.zeros(3), scale=np.ones(3))
    values, vectors = np.linalg.eigh(PREC)
    np.testing.assert_allclose(sens.eigenvalues, values, rtol=1e-4)
    assert abs(abs(sens.most_sensitive @ vectors[:, -1]) - 1) < 1e-4
    assert abs(abs(sens.most_robust @ vectors[:, 0]) - 1) < 1e-4
    scaled = sensitivity(_gaussian, np.zeros(3), low=np.zeros(3), high=np.array([1.0, 2.0, 4.0]))
    np.testing.assert_allclose(scaled.scale, [1.0, 2.0, 4.0])


def test_works_on_an_npe_posterior(gaussian_model):
    """With a trained posterior's log_prob: gradients flow through the flow."""
    from neurosbi import fit_npe

    theta = gaussian_model.prior.sample(jax.random.key(0), (2000,))
    x = gaussian_model.simulate_features(jax.random.key(1), theta)
    post, _ = fit_npe(theta, x, gaussian_model.prior, key=jax.random.key(2), progress=False)
    x_o = jnp.asarray([0.5, -1.0])
    sens = sensitivity(post.log_prob_fn(x_o), np.array([0.4, -0.8]))
    # posterior N(0.8 x, 0.2 I): Hessian of -log p is I / 0.2 = 5 I
    np.testing.assert_allclose(sens.eigenvalues, [5.0, 5.0], rtol=0.35)
