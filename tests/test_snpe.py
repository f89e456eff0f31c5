"""Sequential NPE (TSNPE and APT) on a Gaussian linear task with an analytic posterior."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi import BankError, ObservationError, priors
from neurosbi.inference import NPEConfig, fit_npe, sequential_npe, truncated_prior_sample
from neurosbi.models import from_function

NOISE, PRIOR_SCALE = 0.1, 3.0
X_O = np.array([2.0, -3.0, 4.0])  # at 1 prior std: a one-round NPE spreads its effort over the prior
POST_MEAN = X_O * PRIOR_SCALE**2 / (PRIOR_SCALE**2 + NOISE**2)
POST_STD = np.sqrt(NOISE**2 * PRIOR_SCALE**2 / (PRIOR_SCALE**2 + NOISE**2))


def _simulator(key, theta):
    return theta + NOISE * jax.random.normal(key, theta.shape)


@pytest.fixture(scope="module")
def linear3():
    return from_function(_simulator, priors.gaussian(jnp.zeros(3), PRIOR_SCALE * jnp.ones(3)), name="linear3")


def _error(posterior):
    s = np.asarray(posterior.sample(jax.random.key(99), 4000, jnp.asarray(X_O, jnp.float32)))
    return np.abs(s.mean(0) - POST_MEAN).max() / POST_STD + np.abs(np.log(s.std(0) / POST_STD)).max()


@pytest.fixture(scope="module")
def one_round_error(linear3):
    res = sequential_npe(linear3, X_O, key=jax.random.key(0), rounds=1, simulations_per_round=1500,
                         config=NPEConfig(batch_size=128), progress=False)
    assert len(res.rounds) == 1 and res.rounds[0].proposal == "prior"
    return _error(res.posterior)


@pytest.mark.parametrize("method", ["tsnpe", "apt"])
def test_sequential_beats_one_round_at_equal_budget(linear3, one_round_error, method):
    """Three rounds of 500 simulations against one of 1,500: closer to the analytic posterior
    (error = largest |mean error| in posterior std + largest |log std ratio|)."""
    res = sequential_npe(linear3, X_O, key=jax.random.key(0), rounds=3, simulations_per_round=500, method=method,
                         config=NPEConfig(batch_size=128), progress=False)
    assert [r.num_simulations for r in res.rounds] == [500, 500, 500] and len(res.theta) == 1500
    assert res.rounds[1].proposal == ("truncated prior" if method == "tsnpe" else "posterior")
    error = _error(res.posterior)
    assert error < 0.6, error
    assert error < 0.75 * one_round_error, (error, one_round_error)


def test_truncated_prior_keeps_the_high_probability_region(linear3):
    theta = linear3.prior.sample(jax.random.key(1), (3000,))
    x = _simulator(jax.random.key(2), theta)
    posterior, _ = fit_npe(theta, x, linear3.prior, key=jax.random.key(3), config=NPEConfig(batch_size=128),
                           progress=False)
    samples, acceptance = truncated_prior_sample(linear3.prior, posterior, jnp.asarray(X_O, jnp.float32),
                                                 jax.random.key(4), 200)
    assert samples.shape == (200, 3) and 0 < acceptance < 0.01
    assert np.all(np.abs(samples - POST_MEAN) < 10 * POST_STD)  # all within the posterior's region
    with pytest.raises(ObservationError, match="use method='apt'"):
        truncated_prior_sample(linear3.prior, posterior, jnp.asarray(X_O, jnp.float32), jax.random.key(4), 200,
                               max_draws=10_000)


def test_bad_sequential_options(linear3):
    with pytest.raises(ValueError, match="method must be"):
        sequential_npe(linear3, X_O, key=jax.random.key(0), method="snle")
    with pytest.raises(ValueError, match="simulations_per_round must be"):
        sequential_npe(linear3, X_O, key=jax.random.key(0), rounds=2, simulations_per_round=[100])
    with pytest.raises(ValueError, match="restrict_keep must be"):
        sequential_npe(linear3, X_O, key=jax.random.key(0), restrict=True, restrict_keep=0.0)
    with pytest.raises(ValueError, match="num_atoms must be at least 2"):
        fit_npe(np.zeros((30, 3)), np.zeros((30, 3)), linear3.prior, key=jax.random.key(0), num_atoms=1)


def _gated(key, theta):
    """x = θ + noise, undefined (NaN) unless |θ₁| < 1: two thirds of the U[-3, 3]² prior is invalid."""
    x = theta + NOISE * jax.random.normal(key, theta.shape)
    return jnp.where(jnp.abs(theta[:, 1:2]) < 1.0, x, jnp.nan)


def test_validity_classifier_and_restricted_rounds():
    from neurosbi.inference import fit_validity

    model = from_function(_gated, priors.box_uniform([-3.0, -3.0], [3.0, 3.0]), name="gated")
    theta = np.asarray(model.prior.sample(jax.random.key(0), (4000,)))
    valid = np.abs(theta[:, 1]) < 1.0
    validity = fit_validity(theta, valid, jax.random.key(1))
    test = np.asarray(model.prior.sample(jax.random.key(2), (20_000,)))
    ok = np.abs(test[:, 1]) < 1.0
    accepted = validity.accept(test)
    assert accepted[ok].mean() > 0.97  # keeps the valid region ...
    assert accepted[~ok].mean() < 0.05  # ... and rejects most of the rest
    res = sequential_npe(model, np.array([0.5, 0.2]), key=jax.random.key(3), rounds=2, simulations_per_round=1500,
                         config=NPEConfig(batch_size=128), restrict=True, progress=False)
    first, second = res.rounds
    assert first.num_invalid > 900 and first.restriction["valid_fraction"] < 0.4
    assert second.num_invalid < 0.05 * second.num_simulations and "predicted-valid" in second.proposal


def test_rounds_are_kept_on_disk_and_reloaded(linear3, tmp_path):
    kwargs = dict(key=jax.random.key(11), rounds=2, simulations_per_round=300, config=NPEConfig(batch_size=64, max_epochs=30),
                  progress=False, bank_dir=tmp_path, warm_start=False)  # an old campaign's round 2 starts afresh
    first = sequential_npe(linear3, X_O, **kwargs)
    assert (tmp_path / "round_1.zarr").exists() and (tmp_path / "round_2.zarr").exists()
    again = sequential_npe(linear3, X_O, **kwargs)  # every chunk is reloaded, none simulated
    np.testing.assert_array_equal(first.theta, again.theta)
    np.testing.assert_array_equal(first.x, again.x)
    # both rounds' posteriors were saved after training: nothing is retrained, the reports come back
    assert [r.retrained for r in again.rounds] == [False, False]
    assert [r.epochs for r in again.rounds] == [r.epochs for r in first.rounds]
    assert again.history.validation_loss == first.history.validation_loss  # what infer's metrics read
    x_o = jnp.asarray(X_O, jnp.float32)
    np.testing.assert_array_equal(np.asarray(first.posterior.sample(jax.random.key(1), 50, x_o)),
                                  np.asarray(again.posterior.sample(jax.random.key(1), 50, x_o)))
    # a campaign from before posteriors were saved: round 1 is skipped (round 2 is on disk), round 2 retrained
    for f in tmp_path.glob("round_*_trained.json"):
        f.unlink()
    old = sequential_npe(linear3, X_O, **kwargs)
    assert [r.retrained for r in old.rounds] == [False, True] and old.rounds[0].epochs == 0
    np.testing.assert_allclose(np.asarray(first.posterior.sample(jax.random.key(1), 50, x_o)),
                               np.asarray(old.posterior.sample(jax.random.key(1), 50, x_o)), rtol=1e-5, atol=1e-5)
    # other training options do not reuse the saved posterior
    retrain = sequential_npe(linear3, X_O, **{**kwargs, "config": NPEConfig(batch_size=32, max_epochs=30)})
    assert retrain.rounds[-1].retrained
    with pytest.raises(BankError, match="key"):  # another seed does not reuse (or overwrite) these banks
        sequential_npe(linear3, X_O, **{**kwargs, "key": jax.random.key(12)})


def test_validity_classifier_round_trips(tmp_path):
    from neurosbi.inference import fit_validity, load_validity

    theta = np.asarray(jax.random.uniform(jax.random.key(0), (600, 2)))
    validity = fit_validity(theta, theta[:, 0] > 0.5, jax.random.key(1), epochs=20)
    validity.save(tmp_path / "v.eqx")
    back = load_validity(tmp_path / "v.eqx")
    np.testing.assert_array_equal(validity.accept(theta), back.accept(theta))
    assert back.threshold == validity.threshold and back.valid_fraction == validity.valid_fraction
    (tmp_path / "bad.eqx").write_bytes(b"not a header")
    with pytest.raises(ValueError, match="not a neurosbi validity file"):
        load_validity(tmp_path / "bad.eqx")


def test_callback_sees_every_round_and_can_stop_early(linear3):
    seen = []

    def stop_after_two(report, posterior):
        draws = np.asarray(posterior.sample(jax.random.key(5), 100, jnp.asarray(X_O, jnp.float32)))
        seen.append((report.round, report.num_simulations, draws.shape))
        return report.round == 2

    res = sequential_npe(linear3, X_O, key=jax.random.key(12), rounds=4, simulations_per_round=[300, 200, 200, 200],
                         config=NPEConfig(batch_size=64, max_epochs=20), progress=False, callback=stop_after_two)
    assert seen == [(1, 300, (100, 3)), (2, 200, (100, 3))]
    assert len(res.rounds) == 2 and len(res.theta) == 500  # rounds 3 and 4 never simulated


def test_restricted_posterior_sample_keeps_only_accepted_draws():
    from neurosbi.inference import restricted_posterior_sample

    class Normal2:  # a stand-in posterior: standard normal draws in 2-D
        def sample(self, key, n, x_o):
            return jax.random.normal(key, (n, 2))

    theta = restricted_posterior_sample(Normal2(), None, jax.random.key(0), 500, lambda t: t[:, 0] > 1.0)
    assert theta.shape == (500, 2) and np.all(theta[:, 0] > 1.0)
    assert abs(np.median(theta[:, 1])) < 0.15  # the other coordinate is untouched
    with pytest.raises(ObservationError, match="almost no mass"):
        restricted_posterior_sample(Normal2(), None, jax.random.key(1), 100, lambda t: t[:, 0] > 10.0)


def test_apt_on_a_box_prior_trains_in_the_logit_space():
    """The atomic loss only compares parameters inside the box; APT therefore maps onto the box (as sbi's
    support_map), and its posterior stays inside and near the analytic one."""
    box = from_function(_simulator, priors.box_uniform([-5.0, -5.0], [5.0, 5.0]), name="box2")
    x_o = np.array([1.0, -2.0])
    res = sequential_npe(box, x_o, key=jax.random.key(0), rounds=2, simulations_per_round=600, method="apt",
                         config=NPEConfig(batch_size=128), progress=False)
    assert res.posterior.config.support == "logit"
    s = np.asarray(res.posterior.sample(jax.random.key(1), 2000, jnp.asarray(x_o, jnp.float32)))
    assert np.all(np.abs(s) < 5.0)
    np.testing.assert_allclose(s.mean(0), x_o, atol=3 * NOISE)
