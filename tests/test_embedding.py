"""Embedding nets trained with the flow: a permutation-invariant net on i.i.d. Gaussian trials and a
1-D CNN on linear-regression traces, both against their analytic posteriors; exact invariance,
causality, save / load."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi import priors
from neurosbi.inference import NPEConfig, deep_set, fit_npe, load_posterior, trace_cnn

TRIALS, SIGMA_TRACE = 8, 0.5
T = jnp.linspace(-1.0, 1.0, 64)
CONFIG = NPEConfig(max_epochs=150, patience=15, batch_size=128)


@pytest.fixture(scope="module")
def set_posterior():
    """θ ~ N(0, I₂), eight trials x_j = θ + N(0, I₂): posterior N(8 x̄ / 9, I / 9)."""
    prior = priors.gaussian(jnp.zeros(2), jnp.ones(2))
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    theta = prior.sample(k1, (6000,))
    x = theta[:, None, :] + jax.random.normal(k2, (6000, TRIALS, 2))
    net = deep_set(k3, trials=TRIALS, features=2, out_features=8, width=32)
    posterior, _ = fit_npe(theta, x.reshape(6000, -1), prior, key=jax.random.key(1), config=CONFIG, embedding=net,
                           progress=False)
    return posterior


@pytest.fixture(scope="module")
def trace_posterior():
    """θ ~ N(0, I₂), x(t) = θ₀ + θ₁ t + 0.5 ε(t) at 64 times: Bayesian linear regression."""
    prior = priors.gaussian(jnp.zeros(2), jnp.ones(2))
    k1, k2, k3 = jax.random.split(jax.random.key(2), 3)
    theta = prior.sample(k1, (6000,))
    x = theta[:, :1] + theta[:, 1:] * T + SIGMA_TRACE * jax.random.normal(k2, (6000, 64))
    net = trace_cnn(k3, channels=1, length=64, out_features=8, widths=(8, 16), stride=2, bins=8)
    posterior, _ = fit_npe(theta, x, prior, key=jax.random.key(3), config=CONFIG, embedding=net, progress=False)
    return posterior


def test_deep_set_matches_the_analytic_posterior_and_is_invariant(set_posterior):
    theta_o = np.array([0.7, -0.4])
    x_o = theta_o + np.asarray(jax.random.normal(jax.random.key(7), (TRIALS, 2)))
    samples = np.asarray(set_posterior.sample(jax.random.key(8), 4000, x_o.reshape(-1)))
    np.testing.assert_allclose(samples.mean(0), TRIALS * x_o.mean(0) / (TRIALS + 1), atol=0.08)
    np.testing.assert_allclose(samples.std(0), 1 / 3, rtol=0.15)
    # a shuffled set of trials is the same observation
    shuffled = x_o[np.random.default_rng(0).permutation(TRIALS)]
    lp = set_posterior.log_prob(jnp.asarray(samples[:50]), x_o.reshape(-1))
    lp_shuffled = set_posterior.log_prob(jnp.asarray(samples[:50]), shuffled.reshape(-1))
    np.testing.assert_allclose(np.asarray(lp), np.asarray(lp_shuffled), rtol=1e-5, atol=1e-5)


def test_trace_cnn_matches_bayesian_linear_regression(trace_posterior):
    theta_o = np.array([0.3, -0.8])
    x_o = theta_o[0] + theta_o[1] * np.asarray(T) + SIGMA_TRACE * np.asarray(jax.random.normal(jax.random.key(9), (64,)))
    phi = np.stack([np.ones(64), np.asarray(T)], axis=1)
    cov = np.linalg.inv(np.eye(2) + phi.T @ phi / SIGMA_TRACE**2)
    mean = cov @ phi.T @ x_o / SIGMA_TRACE**2
    samples = np.asarray(trace_posterior.sample(jax.random.key(10), 4000, x_o))
    sd = np.sqrt(np.diag(cov))
    # 6,000 simulations: a flow on the raw 64 values misses the mean by up to 0.55 sd over five
    # observations (measured), the CNN by up to 0.5 sd
    assert np.all(np.abs(samples.mean(0) - mean) < 0.6 * sd), (samples.mean(0), mean, sd)
    np.testing.assert_allclose(samples.std(0), sd, rtol=0.2)


def test_save_and_load_an_embedded_posterior(set_posterior, tmp_path):
    set_posterior.save(tmp_path / "p.eqx")
    back = load_posterior(tmp_path / "p.eqx")
    x = np.linspace(-1, 1, 2 * TRIALS)
    theta = jnp.asarray([[0.1, 0.2], [-0.5, 0.3]])
    np.testing.assert_allclose(np.asarray(back.log_prob(theta, x)), np.asarray(set_posterior.log_prob(theta, x)),
                               rtol=1e-6)


def test_causal_convolutions_do_not_see_the_future():
    net = trace_cnn(jax.random.key(0), channels=2, length=128, widths=(4, 4), stride=2, bins=4)
    x = jax.random.normal(jax.random.key(1), (2, 128))
    later = x.at[:, 100:].add(5.0)  # change the trace from sample 100 on
    a, b = net.temporal_features(x.reshape(-1)), net.temporal_features(later.reshape(-1))
    # after two stride-2 layers, position p has seen samples up to 4 p + 3
    assert a.shape == (4, 32)
    np.testing.assert_array_equal(np.asarray(a[:, :24]), np.asarray(b[:, :24]))
    assert not np.allclose(np.asarray(a[:, 26:]), np.asarray(b[:, 26:]))


def test_bad_embedding_input():
    with pytest.raises(ValueError, match="fewer than bins"):
        trace_cnn(jax.random.key(0), channels=1, length=40, widths=(8, 8, 8), stride=4, bins=8)
