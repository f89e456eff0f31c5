"""The V1 stochastic SSN of EPI: the rescaling of the published fit, the fixed point without noise, the
noise schemes, what drives E variability, runaway handling, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi.models import V1Circuit, get
from neurosbi.models.v1_ssn import H_BASE, H_CONTRAST, STEPS, W_RATES

# the published fit in its own units (reference §1.7), rows / columns E, P, S, V
W_FIT = np.array([[2.18, -1.19, -.594, -.229], [1.66, -.651, -.680, -.242], [.895, -5.22e-3, -1.51e-4, -.761],
                  [3.34, -2.31, -.254, -2.52e-4]])
HB_FIT, HC_FIT = np.array([.416, .429, .491, .486]), np.array([.359, .403, 0, 0])


@pytest.fixture(scope="module")
def stats():
    """Trial-averaged s_E (100 trials) for both noise schemes, jitted once."""
    fns = {}
    for noise in ("two-point", "gaussian"):
        m = V1Circuit(trials=100, noise=noise)
        fns[noise] = jax.jit(m.trial_average)
    return fns


def test_rescaled_constants_are_the_published_fit_times_ten():
    np.testing.assert_allclose(np.array(W_RATES), W_FIT / 10, rtol=1e-9)
    np.testing.assert_allclose(np.array(H_BASE), 10 * HB_FIT, rtol=1e-9)
    np.testing.assert_allclose(np.array(H_CONTRAST), 10 * HC_FIT, rtol=1e-9)


@pytest.mark.parametrize("contrast", [0.0, 0.5])
def test_noiseless_network_settles_on_the_fixed_point_of_the_fitted_model(contrast):
    """x = 100 x_fit with x_fit = [W_fit x_fit + h_fit]_+^2: the rescaled model has the fit's fixed point."""
    x_fit = np.full(4, 0.2)
    for _ in range(20000):  # damped iteration of the fitted model's steady state
        x_fit = x_fit + 0.05 * (-x_fit + np.maximum(W_FIT @ x_fit + HB_FIT + contrast * HC_FIT, 0) ** 2)
    m = V1Circuit(contrast=contrast)
    traces = np.asarray(m.simulate(jax.random.key(0), jnp.zeros((3, 4))))
    assert traces.shape == (3, 4, STEPS)
    np.testing.assert_allclose(traces[:, :, -1], np.tile(100 * x_fit, (3, 1)), rtol=2e-3)
    assert float(m.features(jnp.asarray(traces)).max()) < 0.05  # no noise: no E variability


def test_two_point_increments_are_plus_minus_sqrt_dt():
    m = V1Circuit()
    db = np.asarray(m._increments(jax.random.key(1), 500, jnp.float32))
    assert db.shape == (STEPS, 500, 4)
    np.testing.assert_allclose(np.unique(np.abs(db)), np.sqrt(m.dt), rtol=1e-6)
    assert abs(db.mean()) < 0.01 and abs(db.var() / m.dt - 1) < 0.01
    # independent across steps, rows and populations
    assert abs(np.corrcoef(db[:-1].ravel(), db[1:].ravel())[0, 1]) < 0.01


def test_two_point_and_gaussian_noise_give_the_same_variability(stats):
    z = jnp.array([[0.1, 0.1, 0.1, 0.1], [0.15, 0.0, 0.0, 0.0], [0.0, 0.2, 0.05, 0.05]])
    a = np.mean([np.asarray(stats["two-point"](jax.random.key(i), z)) for i in range(10)], axis=0)
    b = np.mean([np.asarray(stats["gaussian"](jax.random.key(10 + i), z)) for i in range(10)], axis=0)
    # 1,000 trials each; s_E's trial sd is ~60% of its mean, so the difference has sd ~2.7%
    np.testing.assert_allclose(a, b, rtol=0.1)


def test_e_variability_grows_with_e_and_p_noise_and_hardly_with_s_and_v(stats):
    f = stats["two-point"]
    z = jnp.array([[0.0, 0, 0, 0], [0.05, 0, 0, 0], [0.1, 0, 0, 0], [0, 0.1, 0, 0], [0, 0, 0.1, 0.1]])
    s = np.asarray(f(jax.random.key(2), z))[:, 0]
    assert s[0] < 0.01 < s[1] < s[2]
    assert s[3] > 0.4 * s[2]  # P noise drives E almost as E noise does
    assert s[4] < 0.2 * s[2]  # S and V noise barely reach E
    # the two published properties lie inside the box: all four sigma = 0.1 gives about 5-7 Hz
    all_equal = np.asarray(f(jax.random.key(3), jnp.full((1, 4), 0.1)))[0, 0]
    assert 4.0 < all_equal < 8.0


def test_runaway_trials_are_clamped_finite_and_differentiable():
    m = V1Circuit(contrast=2.0, trials=4)
    z = jnp.full((2, 4), 0.5)
    traces = np.asarray(m.simulate(jax.random.key(4), jnp.tile(z, (4, 1))))
    assert np.isfinite(traces).all() and traces.max() <= m.max_rate
    grad = jax.grad(lambda z: m.trial_average(jax.random.key(5), z).sum())(z)
    assert np.isfinite(np.asarray(grad)).all()


def test_gradient_of_the_statistic_points_up_in_sigma_e():
    m = V1Circuit(trials=50)
    grad = np.asarray(jax.grad(lambda z: m.trial_average(jax.random.key(6), z).sum())(jnp.full((1, 4), 0.1)))
    assert grad[0, 0] > 0 and abs(grad[0, 3]) < grad[0, 0]


def test_properties_and_errors():
    m = get("v1-ssn")
    assert m.emergent_property().mean == (5.0,)
    assert m.emergent_property("E-variability-10Hz").mean == (10.0,)
    assert m.emergent_property().simulations_per_z == 100
    with pytest.raises(ValueError, match="E-variability-5Hz"):
        m.emergent_property("5Hz")
    with pytest.raises(ValueError, match="trials"):
        V1Circuit(trials=0)
    with pytest.raises(ValueError, match="two-point"):
        V1Circuit(noise="uniform")
    with pytest.raises(ValueError, match="contrast"):
        V1Circuit(contrast=-1.0)
