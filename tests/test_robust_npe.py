"""NPE-RS (MMD-regularised summary), its kernel, and the two ε-contamination tasks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi import models
from neurosbi._errors import ObservationError
from neurosbi.inference import NPEConfig, deep_set, feature_mlp, fit_npe, fit_npe_rs, load_posterior
from neurosbi.inference.kernels import mmd_to_point


def test_mmd_to_point_matches_the_closed_form():
    a = jnp.array([[0.0], [1.0]])
    # median distance 1 -> h² = 1; k = exp(-d² / 2)
    e = np.exp(-0.5)
    expected = (2 + 2 * e) / 4 - 2 * (1 + e) / 2 + 1
    np.testing.assert_allclose(float(mmd_to_point(a, jnp.array([0.0]))), expected, rtol=1e-6)
    # a point in the middle of the set is closer than one far outside; the gradient is finite
    cloud = jax.random.normal(jax.random.key(0), (50, 3))
    assert mmd_to_point(cloud, jnp.zeros(3)) < mmd_to_point(cloud, jnp.full(3, 4.0))
    g = jax.grad(lambda c: mmd_to_point(c, jnp.full(3, 4.0)))(cloud)
    assert np.all(np.isfinite(np.asarray(g)))


def test_oup_mean_is_the_ar1_mean():
    m = models.get("oup", trials=50)
    theta = np.array([[0.5, 1.0], [1.5, -1.0]], np.float32)
    y = np.asarray(m.simulate(jax.random.key(0), np.repeat(theta, 20, axis=0))).reshape(2, -1, m.length)
    t = np.arange(m.length)
    for i, (a, b) in enumerate(theta):
        mean = np.exp(b) + (10.0 - np.exp(b)) * (1 - a * m.step) ** t
        sem = 0.5 * np.sqrt(m.step) * np.sqrt(t + 1) / np.sqrt(1000)  # loose bound on the standard error
        assert np.all(np.abs(y[i].mean(0) - mean) < 5 * sem + 1e-4)


def test_ricker_first_count_has_the_lognormal_poisson_mean():
    m = models.get("ricker", trials=100)
    log_r, phi = 4.0, 10.0
    y = np.asarray(m.simulate(jax.random.key(1), np.tile([[log_r, phi]], (20, 1)).astype(np.float32)))
    expected = phi * np.exp(log_r - 1.0 + m.sigma**2 / 2)  # N_0 = 1: N_1 = r e^{-1} e^{σ e}
    assert abs(y[:, :, 0].mean() / expected - 1) < 0.03
    assert np.all(y >= 0) and np.all(y == np.round(y))


def test_contaminated_observation_mixes_the_stated_share():
    m = models.get("oup", trials=20)
    x = m.contaminated_observation(jax.random.key(2), 0.25).reshape(20, m.length)
    # the OU process at the truth relaxes towards e; the contaminant (theta_1 < 0) runs away from it
    assert np.all(x[:15, -1] < 8.0) and np.all(x[15:, -1] > 20.0)
    clean = m.contaminated_observation(jax.random.key(2), 0.0).reshape(20, m.length)
    np.testing.assert_array_equal(clean[:15], x[:15])
    with pytest.raises(ValueError, match="epsilon"):
        m.contaminated_observation(jax.random.key(2), 1.5)


@pytest.fixture(scope="module")
def oup_bank():
    m = models.get("oup", trials=20)
    theta = np.asarray(m.prior.sample(jax.random.key(3), (600,)))
    x = np.asarray(m.simulate_features(jax.random.key(4), theta))
    return m, theta, x


CONFIG = NPEConfig(num_transforms=2, hidden_features=20, batch_size=100, support="logit", max_epochs=120)


def test_npe_rs_recovers_the_truth_where_npe_is_pulled_away(oup_bank):
    m, theta, x = oup_bank
    x_o = m.contaminated_observation(jax.random.key(5), 0.3)
    emb = deep_set(jax.random.key(6), trials=m.trials, features=m.length, out_features=4, width=32)
    robust, history, npe = fit_npe_rs(theta, x, m.prior, x_o, key=jax.random.key(7), embedding=emb,
                                      config=CONFIG, progress=False)

    def rmse(post):
        s = np.asarray(post.sample(jax.random.key(8), 1000, jnp.asarray(x_o)))
        return np.sqrt(np.mean(np.sum((s - m.default_truth) ** 2, axis=1)))

    assert rmse(robust) < 0.6 * rmse(npe)
    assert history.epochs > 0


def test_npe_rs_refuses_what_it_cannot_do(oup_bank):
    m, theta, x = oup_bank
    x_o = x[0]
    with pytest.raises(ValueError, match="embedding"):
        fit_npe(theta, x, m.prior, key=jax.random.key(0), config=CONFIG, robust_observation=x_o, progress=False)
    with pytest.raises(ValueError, match="embedding"):
        fit_npe_rs(theta, x, m.prior, x_o, key=jax.random.key(0), config=CONFIG, progress=False)
    emb = deep_set(jax.random.key(6), trials=m.trials, features=m.length, out_features=4, width=32)
    with pytest.raises(ValueError, match="num_atoms"):
        fit_npe(theta, x, m.prior, key=jax.random.key(0), config=CONFIG, embedding=emb, robust_observation=x_o,
                num_atoms=5, progress=False)
    with pytest.raises(ObservationError, match="finite values"):
        fit_npe(theta, x, m.prior, key=jax.random.key(0), config=CONFIG, embedding=emb,
                robust_observation=x_o[:10], progress=False)


def test_feature_mlp_posterior_round_trips(tmp_path, gaussian_model):
    theta = np.asarray(gaussian_model.prior.sample(jax.random.key(9), (300,)))
    x = np.asarray(gaussian_model.simulate_features(jax.random.key(10), theta))
    emb = feature_mlp(jax.random.key(0), features=x.shape[1], out_features=4, width=16)
    post, _ = fit_npe(theta, x, gaussian_model.prior, key=jax.random.key(1), embedding=emb, progress=False,
                      config=NPEConfig(batch_size=64, max_epochs=5))
    post.save(tmp_path / "p.eqx")
    back = load_posterior(tmp_path / "p.eqx")
    x_o = jnp.asarray(x[0])
    np.testing.assert_array_equal(np.asarray(post.sample(jax.random.key(2), 20, x_o)),
                                  np.asarray(back.sample(jax.random.key(2), 20, x_o)))
