"""Perturbed MPR models (robustness sweeps) and the sweep itself."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from neurosbi.cli import app
from neurosbi.misspecification.robustness import robustness_study
from neurosbi.models import Montbrio
from neurosbi.models.perturbed import PERTURBATIONS, PerturbedMontbrio

SHORT = {"duration": 10.0, "t_on": 3.0, "t_off": 6.0}
THETA = jnp.asarray([[0.7, -4.6, 14.5], [1.5, -6.0, 10.0]])


@pytest.fixture(scope="module")
def deterministic_features():
    return np.asarray(Montbrio(noise_sigma=0.0, **SHORT).simulate_features(jax.random.key(0), THETA))


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_strength_zero_is_the_mpr_model(kind, deterministic_features):
    x = PerturbedMontbrio(noise_sigma=0.0, perturbation=kind, strength=0.0, **SHORT).simulate_features(
        jax.random.key(0), THETA)
    np.testing.assert_allclose(np.asarray(x), deterministic_features, rtol=1e-6, atol=1e-6)


def test_adaptation_rests_where_mpr_with_weaker_coupling_rests():
    # at a fixed point a = s r, so -a + J r = (J - s) r: the rest state of MPR with J - s
    s, protocol = 3.0, {"duration": 20.0, "t_on": 19.0, "t_off": 19.5}
    adapted = PerturbedMontbrio(noise_sigma=0.0, perturbation="adaptation", strength=s, **protocol)
    weaker = THETA.at[:, 2].add(-s)
    rest = int(18.9 / adapted.dt)
    a = np.asarray(adapted.simulate(jax.random.key(0), THETA))[:, :, rest]
    b = np.asarray(Montbrio(noise_sigma=0.0, **protocol).simulate(jax.random.key(0), weaker))[:, :, rest]
    np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4)
    # and not where the unadapted model rests
    c = np.asarray(Montbrio(noise_sigma=0.0, **protocol).simulate(jax.random.key(0), THETA))[:, :, rest]
    assert np.max(np.abs(a - c)) > 10 * np.max(np.abs(a - b))


def _lorentzian_rate(x, width):
    """Stationary rate of a Lorentzian QIF population of centre ``x`` and half-width ``width``."""
    return np.sqrt(x + np.sqrt(x * x + width * width)) / (np.pi * np.sqrt(2))


def test_heterogeneity_mixture_rests_at_its_self_consistent_rate():
    from scipy import integrate, optimize, stats

    from neurosbi.models.perturbed import GAUSS_NODES, GAUSS_RANGE

    protocol = {"duration": 20.0, "t_on": 19.0, "t_off": 19.5}
    model = PerturbedMontbrio(noise_sigma=0.0, perturbation="heterogeneity", strength=1.0, **protocol)
    v_sim, r_sim = np.asarray(model.simulate(jax.random.key(0), THETA))[:, :, int(18.9 / model.dt)].T
    z = np.linspace(-GAUSS_RANGE, GAUSS_RANGE, GAUSS_NODES)
    w = np.exp(-0.5 * z**2) / np.exp(-0.5 * z**2).sum()
    mpr_rest = np.asarray(Montbrio(noise_sigma=0.0, **protocol).simulate(jax.random.key(0), THETA))[:, 1, -1]
    for (delta, eta, coupling), v, r, r_mpr in zip(np.asarray(THETA, float), v_sim, r_sim, mpr_rest):
        sd = delta / np.sqrt(2 * np.log(2))
        width = sd * (z[1] - z[0])

        def excess(rate, sd=sd, width=width, eta=eta, coupling=coupling):
            return w @ _lorentzian_rate(eta + sd * z + coupling * rate, width) - rate

        grid = np.linspace(1e-4, 3.0, 3000)
        vals = np.array([excess(g) for g in grid])
        roots = [optimize.brentq(excess, a, b) for a, b, fa, fb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:])
                 if fa * fb < 0]
        rate = min(roots, key=lambda q: abs(q - r))
        sub = _lorentzian_rate(eta + sd * z + coupling * rate, width)
        np.testing.assert_allclose(r, rate, rtol=1e-3)
        np.testing.assert_allclose(v, w @ (-width / (2 * np.pi * sub)), rtol=1e-3)
        assert r < 0.5 * r_mpr  # light tails: fewer neurons above threshold at rest than the Lorentzian has

    # where the bulk fires, the mixture's rate is the Gaussian population's (∫ N(η) √(η + J R)₊ / π dη = R)
    delta, eta, coupling = 1.0, 2.0, 5.0
    sd = delta / np.sqrt(2 * np.log(2))
    width = sd * (z[1] - z[0])
    mixture = optimize.brentq(lambda q: w @ _lorentzian_rate(eta + sd * z + coupling * q, width) - q, 0.1, 3.0)

    def gauss_excess(q):
        firing = lambda e: stats.norm.pdf(e, eta, sd) * np.sqrt(max(e + coupling * q, 0.0)) / np.pi
        return integrate.quad(firing, eta - 8 * sd, eta + 8 * sd, points=[-coupling * q])[0] - q

    np.testing.assert_allclose(mixture, optimize.brentq(gauss_excess, 0.1, 3.0), rtol=2e-3)


def test_observation_noise_adds_its_variance(deterministic_features):
    s = 0.05
    model = PerturbedMontbrio(noise_sigma=0.0, perturbation="observation", strength=s, **SHORT)
    x = np.asarray(model.simulate_features(jax.random.key(1), THETA))
    col = list(model.feature_names).index("v_std_post")  # a window where the deterministic state is at rest
    expected = np.sqrt(deterministic_features[:, col] ** 2 + s**2)
    np.testing.assert_allclose(x[:, col], expected, rtol=0.1)


def test_bad_perturbations_are_refused():
    with pytest.raises(ValueError, match="perturbation must be one of"):
        PerturbedMontbrio(perturbation="drift", strength=0.1)
    with pytest.raises(ValueError, match="fraction"):
        PerturbedMontbrio(perturbation="contamination", strength=2.0)
    with pytest.raises(ValueError, match="fraction"):
        PerturbedMontbrio(perturbation="heterogeneity", strength=1.5)
    res = CliRunner().invoke(app, ["misspec", "robustness", "--perturbations", "synapse=0/fast"])
    assert res.exit_code != 0 and "numbers separated by '/'" in res.output
    res = CliRunner().invoke(app, ["misspec", "prior-transfer", "--duration", "0", "--out", "unused"])
    assert res.exit_code != 0 and "--duration must be > 0" in res.output


def test_sweep_is_calibrated_at_zero_detects_strong_noise_and_resumes(tmp_path):
    model = Montbrio(**SHORT)
    kwargs = {"out": tmp_path, "model": model, "num_simulations": 2500, "num_observations": 40, "progress": False}
    record = robustness_study(strengths={"observation": (0.0, 0.2)}, **kwargs)
    zero, strong = record["points"]["observation"]
    assert zero["detection_rate"] <= 0.2 and zero["coverage"] >= 0.7
    assert strong["detection_rate"] >= 0.8 and strong["coverage"] < zero["coverage"]
    assert strong["rmse"] > zero["rmse"]
    assert (tmp_path / "robustness.png").stat().st_size > 0
    # a second run with one more strength reuses the posterior and the finished points
    again = robustness_study(strengths={"observation": (0.0, 0.05, 0.2)}, **kwargs)
    assert [p["strength"] for p in again["points"]["observation"]] == [0.0, 0.05, 0.2]
    assert again["points"]["observation"][0] == zero
    assert json.loads((tmp_path / "robustness.json").read_text())["points"]["observation"][2] == strong


def test_onset_and_xcorr_lags_of_shifted_bumps():
    from neurosbi.misspecification.cross_scale import first_peak_time, onset_lag, xcorr_lag

    t = np.arange(0, 10, 1e-3)
    bump = lambda c: 1.0 * np.exp(-0.5 * ((t - c) / 0.1) ** 2)  # noqa: E731
    network, mean_field = bump(3.4) + 0.01 * np.sin(200 * t), bump(3.45)
    assert abs(first_peak_time(t, network, 3.0) - 3.4) < 5e-3
    assert abs(onset_lag(t, mean_field, network, 3.0) - 0.05) < 5e-3
    assert abs(xcorr_lag(mean_field, network, 1e-3) + 0.05) < 2e-3  # the network runs 50 ms ahead
    assert np.isnan(first_peak_time(t, 0.1 * network, 3.0))  # below the published height of 0.2


def test_weighted_intervals_and_population_prior():
    from neurosbi.misspecification.prior_transfer import _weighted_stats, population_prior

    rng = np.random.default_rng(0)
    draws = rng.normal(size=(20_000, 1))
    # reweighting N(0, 1) draws by N(1, 1) / N(0, 1) gives N(1, 1): mean 1, sd 1, 90 % interval [-0.64, 2.64]
    w = np.exp(draws[:, 0] - 0.5)
    mean, sd, inside = _weighted_stats(draws, w, np.array([2.5]))
    assert abs(mean[0] - 1) < 0.05 and abs(sd[0] - 1) < 0.05 and inside[0]
    assert not _weighted_stats(draws, w, np.array([2.8]))[2][0]
    pop = population_prior(Montbrio(), [0.7, -4.6, 14.5], 0.1)
    np.testing.assert_allclose(np.asarray(pop.scale), [0.49, 0.7, 1.5], rtol=1e-5)


def test_prior_transfer_runs_end_to_end(tmp_path):
    from neurosbi.misspecification.prior_transfer import prior_transfer_study
    from neurosbi.models import QIFNetwork

    record = prior_transfer_study(out=tmp_path, detailed=QIFNetwork(n_neurons=200, heterogeneity="random", **SHORT),
                                  num_fit=50, num_test=10, num_simulations=2000, num_draws=300, num_predictive=4,
                                  progress=False)
    box, learned = record["priors"]["box"], record["priors"]["learned"]
    assert box["median_ess"] == 300  # the box prior reweights nothing
    assert learned["median_ess"] < 300 and learned["posterior_sd"] < box["posterior_sd"]
    assert (tmp_path / "prior_transfer.png").stat().st_size > 0


@pytest.mark.heavy
def test_cross_scale_study_on_a_small_network(tmp_path):
    from neurosbi.misspecification.cross_scale import cross_scale_study
    from neurosbi.models import QIFNetwork

    record = cross_scale_study(out=tmp_path, network=QIFNetwork(n_neurons=2000, **SHORT), num_simulations=3000,
                               num_samples=2000, progress=False)
    mf = record["data"]["mean_field"]
    assert mf["rho_eta_J"] < -0.3  # η and J trade off (published -0.78)
    assert mf["misspecification"]["verdict"] == "consistent"
    assert np.isfinite(record["lag"]["first_peak_network_s"])
    assert (tmp_path / "cross_scale.png").stat().st_size > 0
