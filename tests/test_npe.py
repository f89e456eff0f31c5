"""NPE against an analytic posterior; support; save/load; input checks; ArviZ export."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi import NPEConfig, ObservationError, ShapeError, fit_npe, load_posterior, priors, simulate
from neurosbi.inference import to_inference_data


@pytest.fixture(scope="module")
def gaussian_posterior(gaussian_model):
    bank = simulate(gaussian_model, 8000, jax.random.key(1), chunk_size=2000, progress=False)
    post, history = fit_npe(bank.theta, bank.x, gaussian_model.prior, key=jax.random.key(2),
                            config=NPEConfig(max_epochs=300), progress=False)
    return post, history


def test_npe_matches_the_analytic_gaussian_posterior(gaussian_posterior):
    post, history = gaussian_posterior
    x_o = jnp.asarray([0.5, -1.0])
    s = np.asarray(post.sample(jax.random.key(3), 20_000, x_o))
    # prior N(0, 1), noise N(0, 0.25): posterior mean 0.8 x, variance 0.2, no correlation
    np.testing.assert_allclose(s.mean(0), 0.8 * np.asarray(x_o), atol=0.05)
    np.testing.assert_allclose(np.cov(s.T), 0.2 * np.eye(2), atol=0.03)
    assert history.epochs >= 2 and history.validation_loss[history.best_epoch] == min(history.validation_loss)


def test_save_load_round_trip(gaussian_posterior, tmp_path):
    post, _ = gaussian_posterior
    post.save(tmp_path / "p.eqx")
    back = load_posterior(tmp_path / "p.eqx")
    theta = jnp.asarray([[0.1, 0.2], [1.0, -2.0]])
    x_o = jnp.asarray([0.5, -1.0])
    np.testing.assert_array_equal(back.log_prob(theta, x_o), post.log_prob(theta, x_o))
    np.testing.assert_array_equal(back.sample(jax.random.key(0), 5, x_o), post.sample(jax.random.key(0), 5, x_o))
    (tmp_path / "bad").write_bytes(b"\x80not json\n")
    with pytest.raises(ValueError, match="not a neurosbi posterior"):
        load_posterior(tmp_path / "bad")


@pytest.mark.parametrize("support", ["truncate", "logit"])
def test_box_prior_support_is_respected_and_log_prob_normalised(support):
    prior = priors.box_uniform([0.0, 0.0], [1.0, 1.0])
    theta = prior.sample(jax.random.key(0), (4000,))
    x = theta + 0.1 * jax.random.normal(jax.random.key(1), theta.shape)
    config = NPEConfig(max_epochs=40, flow="nsf", support=support)
    post, _ = fit_npe(theta, x, prior, key=jax.random.key(2), config=config, progress=False)
    x_o = jnp.asarray([0.02, 0.5])  # near the boundary: mass would leak out of an unbounded flow
    s = np.asarray(post.sample(jax.random.key(3), 5000, x_o))
    assert s.min() > 0 and s.max() < 1
    assert np.isneginf(post.log_prob(jnp.asarray([-0.1, 0.5]), x_o))
    g = np.linspace(0.0025, 0.9975, 200)
    grid = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
    mass = float(jnp.sum(jnp.exp(post.log_prob(grid, x_o)))) * (1 / 200) ** 2
    # the truncated flow's density integrates to its in-box mass; the logit flow's to one
    expected = post.in_box_mass(jax.random.key(4), x_o, n=100_000)
    assert (expected < 0.99) if support == "truncate" else (expected == 1.0)
    assert mass == pytest.approx(expected, abs=0.05)


def test_bad_training_data_and_observations_are_refused(gaussian_posterior, gaussian_model):
    post, _ = gaussian_posterior
    with pytest.raises(ObservationError, match="3 features, this posterior was trained on 2"):
        post.sample(jax.random.key(0), 10, jnp.zeros(3))
    with pytest.raises(ObservationError, match="NaN"):
        post.sample(jax.random.key(0), 10, jnp.asarray([0.0, jnp.nan]))
    with pytest.raises(ShapeError, match="3 columns, the prior has 2"):
        fit_npe(np.zeros((50, 3)), np.zeros((50, 2)), gaussian_model.prior, key=jax.random.key(0))
    with pytest.raises(ValueError, match="flow must be"):
        NPEConfig(flow="made")


def test_invalid_rows_are_dropped_and_counted(gaussian_model):
    theta = np.asarray(gaussian_model.prior.sample(jax.random.key(0), (400,)))
    x = theta.copy()
    x[:37, 0] = np.nan
    _, history = fit_npe(theta, x, gaussian_model.prior, key=jax.random.key(1),
                         config=NPEConfig(max_epochs=2), progress=False)
    assert history.num_invalid_dropped == 37
    assert history.num_train + history.num_validation == 363


def test_inference_data_export():
    idata = to_inference_data(np.random.default_rng(0).normal(size=(100, 2)), ("a", "b"), truth=[0, 1])
    assert set(idata.posterior.data_vars) == {"a", "b"} and idata.posterior["a"].shape == (1, 100)


def test_a_posterior_with_no_mass_in_the_box_is_counted_not_fatal():
    prior = priors.box_uniform([0.0, 0.0], [1.0, 1.0])
    theta = prior.sample(jax.random.key(0), (2000,))
    x = theta + 0.05 * jax.random.normal(jax.random.key(1), theta.shape)
    post, _ = fit_npe(theta, x, prior, key=jax.random.key(2), config=NPEConfig(max_epochs=20), progress=False)
    far = jnp.asarray([[0.5, 0.5], [30.0, 30.0]])  # the second is far outside anything simulated
    draws = post.sample_batch(jax.random.key(3), 100, far, max_draws=20_000)
    assert np.isfinite(draws[0]).all() and np.isnan(draws[1]).all()
    with pytest.raises(ObservationError, match="inside the prior box"):
        post._rejection_sample(jax.random.key(4), 100, far[1], max_draws=20_000)
    from neurosbi.diagnostics import expected_coverage

    cov = expected_coverage(post, jnp.asarray([[0.5, 0.5], [0.9, 0.9]]), far, jax.random.key(5), num_samples=100)
    assert cov["num_failed"] == 1 and cov["joint"][-1] <= 0.5


def test_ensemble_is_the_mixture_of_its_members(gaussian_model, tmp_path):
    """Three flows trained together: the analytic posterior; log_prob is the log of the members' mean
    density (normalised); save / load keeps every member."""
    bank = simulate(gaussian_model, 4000, jax.random.key(5), chunk_size=2000, progress=False)
    post, _ = fit_npe(bank.theta, bank.x, gaussian_model.prior, key=jax.random.key(6),
                      config=NPEConfig(max_epochs=200, ensemble=3), progress=False)
    x_o = jnp.asarray([0.5, -1.0])
    s = np.asarray(post.sample(jax.random.key(7), 20_000, x_o))
    np.testing.assert_allclose(s.mean(0), 0.8 * np.asarray(x_o), atol=0.06)
    np.testing.assert_allclose(s.std(0), np.sqrt(0.2), rtol=0.1)
    theta = jnp.asarray(s[:100])
    z = (theta - post.theta_loc) / post.theta_scale
    members = post.flow.member_log_probs(z, jnp.broadcast_to(post._standardize_x(x_o), (100, 2)))
    mean_density = np.log(np.exp(np.asarray(members)).mean(0)) - float(jnp.sum(jnp.log(post.theta_scale)))
    np.testing.assert_allclose(np.asarray(post.log_prob(theta, x_o)), mean_density, rtol=1e-4, atol=1e-4)
    assert np.ptp(np.asarray(members), axis=0).max() > 1e-3  # the members differ
    grid = np.stack(np.meshgrid(np.linspace(-3, 3, 121), np.linspace(-4, 2, 121)), -1).reshape(-1, 2)
    mass = np.exp(np.asarray(post.log_prob(jnp.asarray(grid), x_o))).sum() * (6 / 120) ** 2
    assert abs(mass - 1.0) < 0.02
    post.save(tmp_path / "e.eqx")
    np.testing.assert_array_equal(load_posterior(tmp_path / "e.eqx").log_prob(theta, x_o), post.log_prob(theta, x_o))
    with pytest.raises(ValueError, match="ensemble"):
        NPEConfig(ensemble=0)
    from neurosbi.inference import temper  # every member's base is tempered

    hot = np.asarray(temper(post, 1.5).sample(jax.random.key(7), 20_000, x_o))
    np.testing.assert_allclose(hot.std(0), 1.5 * np.sqrt(0.2), rtol=0.1)


def test_temperature_widens_the_posterior_and_is_recovered(gaussian_posterior, gaussian_model, tmp_path):
    """Scaling the base std by τ scales this (Gaussian, nearly affine) posterior's std by τ; a posterior
    made over-confident (τ = 0.6) is brought back to the calibrated τ ≈ 1 by ``fit_temperature`` on
    held-out simulations."""
    from neurosbi.diagnostics import coverage_error, expected_coverage
    from neurosbi.inference import fit_temperature, temper

    post, _ = gaussian_posterior
    x_o = jnp.asarray([0.5, -1.0])
    hot = temper(post, 1.5)
    s = np.asarray(hot.sample(jax.random.key(3), 20_000, x_o))
    np.testing.assert_allclose(s.mean(0), 0.8 * np.asarray(x_o), atol=0.07)
    np.testing.assert_allclose(s.std(0), 1.5 * np.sqrt(0.2), rtol=0.06)
    hot.save(tmp_path / "hot.eqx")
    back = load_posterior(tmp_path / "hot.eqx")
    assert back.temperature == 1.5
    theta = jnp.asarray([[0.1, 0.2], [1.0, -2.0]])
    np.testing.assert_array_equal(back.log_prob(theta, x_o), hot.log_prob(theta, x_o))
    with pytest.raises(ValueError, match="temperature"):
        temper(post, 0.0)

    held = simulate(gaussian_model, 800, jax.random.key(11), chunk_size=400, progress=False)
    cold = temper(post, 0.6)
    cold_error = coverage_error(expected_coverage(cold, held.theta[400:], held.x[400:], jax.random.key(4)))
    fitted, report = fit_temperature(cold, held.theta[:400], held.x[:400], jax.random.key(5), steps=6)
    assert 0.85 <= fitted.temperature <= 1.2, report
    assert report["tried"][str(fitted.temperature)] == report["calibration_error"]
    fitted_error = coverage_error(expected_coverage(fitted, held.theta[400:], held.x[400:], jax.random.key(4)))
    assert cold_error > 0.15 and fitted_error < 0.08, (cold_error, fitted_error)
    with pytest.raises(ValueError, match="at least 50"):
        fit_temperature(post, held.theta[:10], held.x[:10], jax.random.key(5))


def test_log_features_are_applied_by_training_and_posterior(gaussian_model):
    """A feature given as exp(x) and read on a log scale gives the posterior of x itself; bad
    columns and negative observations are refused."""
    bank = simulate(gaussian_model, 4000, jax.random.key(1), chunk_size=2000, progress=False)
    x = np.asarray(bank.x).copy()
    x[:, 1] = np.exp(x[:, 1]) - 1e-3  # log(x + 1e-3) recovers the original column
    post, _ = fit_npe(bank.theta, x, gaussian_model.prior, key=jax.random.key(2),
                      config=NPEConfig(max_epochs=200, log_features=[1]), progress=False)
    assert post.config.log_features == (1,)
    x_o = np.asarray([0.5, np.exp(-1.0) - 1e-3], np.float32)
    s = np.asarray(post.sample(jax.random.key(3), 10_000, x_o))
    np.testing.assert_allclose(s.mean(0), [0.4, -0.8], atol=0.06)
    np.testing.assert_allclose(s.std(0), np.sqrt(0.2), rtol=0.1)
    with pytest.raises(ObservationError, match="log scale"):
        post.sample(jax.random.key(3), 10, np.asarray([0.5, -0.5], np.float32))
    with pytest.raises(ValueError, match="beyond"):
        fit_npe(bank.theta, x, gaussian_model.prior, key=jax.random.key(2), config=NPEConfig(log_features=(5,)),
                progress=False)
    with pytest.raises(ValueError, match="distinct"):
        NPEConfig(log_features=(1, 1))


def test_gradient_clipping_is_applied(gaussian_model):
    """A clip norm far below Adam's epsilon stalls training: the clip sits in the optimiser."""
    theta = np.asarray(gaussian_model.prior.sample(jax.random.key(0), (1000,)))
    x = theta + 0.5 * np.asarray(jax.random.normal(jax.random.key(1), theta.shape))
    losses = {}
    for clip in (None, 1e-12):
        _, history = fit_npe(theta, x, gaussian_model.prior, key=jax.random.key(2),
                             config=NPEConfig(max_epochs=3, clip_norm=clip), progress=False)
        losses[clip] = history.validation_loss
    assert losses[None][-1] < losses[None][0] - 0.1
    assert abs(losses[1e-12][-1] - losses[1e-12][0]) < 1e-3
    with pytest.raises(ValueError, match="clip_norm must be > 0"):
        NPEConfig(clip_norm=0.0)
