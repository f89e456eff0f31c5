"""Detection of misspecification: calibrated tests, the feature density, the per-feature error model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from neurosbi import priors
from neurosbi._errors import ObservationError, ShapeError
from neurosbi.diagnostics.misspecification import (
    FLAG_THRESHOLD,
    c2st_test,
    check_observation,
    density_test,
    mmd_test,
)
from neurosbi.inference import NPEConfig, fit_npe
from neurosbi.inference.density import fit_density
from neurosbi.inference.robust import denoise, robust_sample

COV = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
CHOL = np.linalg.cholesky(COV)


def toy(n, seed):
    """Features [a, b, c, k]: (a, b, c) Gaussian with corr(a, b) = 0.8, k a Poisson count."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, 3)) @ CHOL.T
    return np.c_[g, rng.poisson(3.0, size=n)].astype(np.float32)


@pytest.fixture(scope="module")
def sims():
    return toy(5000, 0)


@pytest.fixture(scope="module")
def density(sims):
    d, history = fit_density(sims[:3000], key=jax.random.key(0), config=NPEConfig(max_epochs=150), progress=False)
    return d


def test_density_matches_the_true_density_and_dequantizes_counts(density):
    assert density.discrete == (3,)
    x = toy(400, 9)
    # the dequantized count's density at an integer is about its probability
    true_lp = -0.5 * np.einsum("ni,ij,nj->n", x[:, :3], np.linalg.inv(COV), x[:, :3]) + stats.poisson.logpmf(x[:, 3], 3.0)
    lp = np.asarray(density.log_prob(x))
    assert np.corrcoef(lp, true_lp)[0, 1] > 0.9  # the same density up to a constant
    draws = np.asarray(density.sample(jax.random.key(1), 4000))
    assert np.allclose(np.corrcoef(draws[:, :3].T), COV, atol=0.08)
    assert abs(draws[:, 3].mean() - 3.0) < 0.2  # the dequantized count keeps its mean


def test_tests_keep_their_level_and_reject_a_shift(density, sims):
    held_out = sims[3000:]
    obs = toy(200, 1)
    p_mmd = np.array([mmd_test(o, held_out, jax.random.key(i), num_null=400, num_reference=1000).pvalue
                      for i, o in enumerate(obs)])
    p_den = np.array([density_test(o, density, held_out).pvalue for o in obs])
    for p in (p_mmd, p_den):
        assert 0.01 <= np.mean(p < 0.05) <= 0.10  # nominal 0.05; binomial sd over 200 is 0.015
        assert 0.4 < np.mean(p) < 0.6  # uniform under the null
    shifted = obs[:20] + np.array([5.0, 5.0, 5.0, 0.0], np.float32)
    assert max(mmd_test(o, held_out, jax.random.key(0), num_null=400).pvalue for o in shifted) < 0.01
    assert max(density_test(o, density, held_out).pvalue for o in shifted) < 0.01
    # a broken relation (a and b anti-correlated) is invisible marginally, plain for the density
    broken = np.array([1.5, -1.5, 0.0, 3.0], np.float32)
    assert density_test(broken, density, held_out).pvalue < 0.01


def test_mmd_test_on_several_observations(sims):
    obs = toy(10, 2)
    assert mmd_test(obs, sims, jax.random.key(0), num_null=200).pvalue > 0.01
    assert mmd_test(obs + 1.0, sims, jax.random.key(0), num_null=200).pvalue < 0.01


def test_error_model_flags_the_corrupted_feature(density):
    y = np.array([0.3, 0.1, -0.2, 3.0], np.float32)
    clean = denoise(y, density, jax.random.key(0))
    assert clean.probabilities.max() < FLAG_THRESHOLD
    assert len(clean.flagged(FLAG_THRESHOLD)) == 0
    corrupted = denoise(y + np.array([0.0, 0.0, 6.0, 0.0], np.float32), density, jax.random.key(0))
    assert corrupted.probabilities[2] > 0.95
    assert list(corrupted.flagged(FLAG_THRESHOLD)) == [2]
    # the denoised feature is pulled back into the model's range, the others stay at the observation
    assert abs(np.median(corrupted.samples[:, 2])) < 2.5
    assert np.allclose(np.median(corrupted.samples[:, :2], axis=0), y[:2], atol=0.05)


def test_robust_posterior_ignores_a_corrupted_feature():
    """Linear Gaussian: x = (θ, θ) + noise; corrupting one copy biases plain NPE, not the robust one."""
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(4000, 1)).astype(np.float32)
    x = np.c_[theta, theta, theta] + 0.3 * rng.normal(size=(4000, 3)).astype(np.float32)
    prior = priors.gaussian(jnp.zeros(1), jnp.ones(1))
    config = NPEConfig(max_epochs=100, num_transforms=2)
    posterior, _ = fit_npe(theta, x, prior, key=jax.random.key(0), config=config, progress=False)
    density, _ = fit_density(x, key=jax.random.key(1), config=config, progress=False)
    y = np.array([0.5, 0.5, 5.0], np.float32)  # the truth is 0.5; the third copy is corrupted
    plain = np.asarray(posterior.sample(jax.random.key(2), 2000, y))
    robust = np.asarray(robust_sample(posterior, denoise(y, density, jax.random.key(3)), jax.random.key(4), 2000))
    assert abs(np.median(robust) - 0.5) < 0.25
    assert abs(np.median(plain) - 0.5) > 2 * abs(np.median(robust) - 0.5)


def test_c2st_test(sims):
    obs = toy(300, 3)
    assert c2st_test(obs, sims, jax.random.key(0), epochs=40).pvalue > 0.01
    assert c2st_test(obs * 1.6, sims, jax.random.key(0), epochs=40).pvalue < 0.01
    with pytest.raises(ShapeError, match="at least 20 observations"):
        c2st_test(obs[:5], sims, jax.random.key(0))


def test_check_observation_verdict_and_bad_input(density, sims):
    held_out = sims[3000:]
    names = ["a", "b", "c", "count"]
    ok = check_observation(np.array([0.2, 0.4, -0.1, 2.0], np.float32), held_out, jax.random.key(0),
                           density=density, feature_names=names, num_null=500)
    assert not ok.misspecified and ok.flagged == []
    bad = check_observation(np.array([0.2, 0.4, 7.0, 2.0], np.float32), held_out, jax.random.key(0),
                            density=density, feature_names=names, num_null=500)
    assert bad.misspecified and bad.flagged == ["c"]
    record = bad.as_dict()
    assert record["verdict"] == "misspecified" and [t["name"] for t in record["tests"]] == ["mmd", "density"]
    assert "c" in bad.summary()
    with pytest.raises(ObservationError, match="NaN"):
        check_observation(np.array([0.2, np.nan, 0.0, 1.0]), held_out, jax.random.key(0), density=density)
    with pytest.raises(ShapeError, match=r"\[4\]"):
        check_observation(np.zeros(3), held_out, jax.random.key(0), density=density)
    with pytest.raises(ShapeError, match="simulate more"):
        check_observation(np.zeros(4), held_out[:100], jax.random.key(0))


def test_posterior_summary_is_the_posterior_mean(gaussian_model):
    """x = θ + N(0, 0.25): E[θ | x] = 0.8 x, so the summary is linear in x with slope 0.8 / std(θ)."""
    from neurosbi.simulate import simulate

    bank = simulate(gaussian_model, 4000, jax.random.key(0), progress=False)
    posterior, _ = fit_npe(bank.theta, bank.x, gaussian_model.prior, key=jax.random.key(1),
                           config=NPEConfig(max_epochs=60, num_transforms=2), progress=False)
    xs = np.linspace(-2, 2, 9, dtype=np.float32)[:, None].repeat(2, 1)
    s = np.asarray(posterior.summary(xs, jax.random.key(2), num_draws=400))
    theta_mean = s * np.asarray(posterior.theta_scale) + np.asarray(posterior.theta_loc)
    assert np.allclose(theta_mean, 0.8 * xs, atol=0.15)
