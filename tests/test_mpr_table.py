"""Seed 003's table: the objective, the likelihoods and the one command (issue 7, scopes 1-3 and 6)."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from neurosbi import mpr_table as mt
from neurosbi.cli import app
from neurosbi.inference import mcmc
from neurosbi.inference.mcmc import from_box


@pytest.fixture(scope="module")
def stochastic():
    return mt.make_data("stochastic", 0)


def test_the_objective_is_zero_at_the_truth_on_deterministic_data_only(stochastic):
    deterministic = mt.make_data("deterministic", 0)
    f = mt.objective(deterministic)
    values = np.asarray(f(np.stack([mt.TRUTH, mt.TRUTH + [0.01, 0, 0]])))
    assert values[0] < 1e-10 and values[1] > 1e-2
    # the skeleton is the simulator's noise-free path, sampled every DECIMATION steps
    np.testing.assert_allclose(mt._skeleton_np(mt.TRUTH, deterministic), deterministic.samples, atol=1e-12)
    assert mt.objective(stochastic)(mt.TRUTH[None])[0] > 1.0  # the noise moves the trace off the skeleton
    missing = mt.make_data("missing", 0)
    assert missing.observed.shape == (1, 10_000) and np.array_equal(missing.traces, stochastic.traces)


def test_state_space_density_peaks_near_the_truth(stochastic):
    """The state-space log density at the observed path: the truth beats points a few sds away."""
    target = mt.state_space_likelihood(stochastic)
    with jax.enable_x64(True):
        p = jax.tree.map(lambda a: a[0], target.init(jax.random.key(0), 1))
        p["log_eps"] = jnp.float64(np.log(1e-4))

        def at(theta):
            return float(target.logdensity({**p, "u": from_box(jnp.asarray(theta), mt.LOW, mt.HIGH)}))

        best = at(mt.TRUTH)
        for shift in ([0.2, 0, 0], [0, 0.3, 0], [0, 0, 0.5]):
            assert at(mt.TRUTH + np.array(shift)) < best - 10


def test_a_pseudo_observation_of_r_joins_the_objective_and_the_likelihood():
    """The +tde methods: r̂ enters the L2 objective where it is finite and the likelihoods at every stride-th
    covered time with its error sd."""
    det = mt.make_data("deterministic", 0)
    r_hat = det.samples[1].copy()
    r_hat[:5] = np.nan
    v_only = dataclasses.replace(det, channels=(0,))
    with_r = dataclasses.replace(v_only, pseudo_r=r_hat, pseudo_error=0.1, pseudo_stride=3)
    shifted = mt.TRUTH + np.array([0.05, 0.0, 0.0])
    path = mt._skeleton_np(shifted, det)
    assert mt.objective(with_r)(mt.TRUTH[None])[0] < 1e-10
    np.testing.assert_allclose(mt.objective(v_only)(shifted[None])[0], np.sqrt(np.sum((path[0] - det.samples[0]) ** 2)))
    expected = np.sqrt(np.sum((path[0] - det.samples[0]) ** 2) + np.sum((path[1, 5:] - det.samples[1, 5:]) ** 2))
    np.testing.assert_allclose(mt.objective(with_r)(shifted[None])[0], expected, rtol=1e-10)
    used = len(range(5, det.samples.shape[1], 3))
    assert float(with_r.pseudo_log_likelihood(jnp.asarray(det.samples[1]))) == 0.0
    np.testing.assert_allclose(float(with_r.pseudo_log_likelihood(jnp.asarray(det.samples[1] + 0.1))), -0.5 * used)
    assert v_only.pseudo_log_likelihood(det.samples[1]) == 0.0


@pytest.mark.heavy
def test_tde_rows_on_the_missing_case(tmp_path):
    """The delay-embedding reconstruction of r (a 100-series bank) is written with its measured error, and a
    +tde method fits with it."""
    table = mt.run_table("missing", out=tmp_path, methods=["de", "de+tde"], repeats=1, budget="tiny", progress=False)
    tde = json.loads((tmp_path / "tde.json").read_text())
    assert tde["delay_samples"] == 16 and tde["neighbours"] == 182 and tde["bank_series"] == 100
    assert tde["rmse"] < 0.25 and tde["rmse"] <= tde["rmse_raw"] and 0 < tde["held_out_rmse"] < 0.3
    assert tde["pseudo_stride_samples"] >= 1 and (tmp_path / "tde.png").stat().st_size > 10_000
    record = json.loads((tmp_path / "runs" / "de+tde-0" / "record.json").read_text())
    assert record["method"] == "de+tde" and record["pseudo_observation"]["error_sd"] == tde["held_out_rmse"]
    assert set(table["methods"]) == {"de", "de+tde"} and "+TDE rows" in (tmp_path / "table.md").read_text()
    # the cache serves the same settings only: another bank size remakes r̂
    data = mt.make_data("missing", 0)
    again = mt.tde_pseudo_observation(data, tmp_path, bank_size=100, held_out=2)
    assert json.loads((tmp_path / "tde.json").read_text()) == tde
    smaller = mt.tde_pseudo_observation(data, tmp_path, bank_size=40, held_out=2)
    assert json.loads((tmp_path / "tde.json").read_text())["bank_series"] == 40
    assert not np.array_equal(again.pseudo_r, smaller.pseudo_r, equal_nan=True)


def test_table_command_writes_every_column(tmp_path):
    out = tmp_path / "table"
    result = CliRunner().invoke(app, ["bench", "mpr-table", "--case", "stochastic", "--budget", "tiny",
                                      "--repeats", "1", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads((out / "table.json").read_text())
    assert set(table["methods"]) == set(mt.METHODS)
    for method, row in table["methods"].items():
        for column in ("param_rmse", "ts_rmse", "seconds"):
            assert np.isfinite(row[column]["mean"]) and np.isfinite(row[column]["std"]), (method, column)
        if method in ("nuts", "npe"):
            assert set(row["z_score"]) == set(row["shrinkage"]) == {"delta", "eta", "J"}
    nuts = json.loads((out / "runs" / "nuts-0" / "record.json").read_text())["nuts"]
    assert {"theta[0]", "theta[1]", "theta[2]", "eps"} <= set(nuts["diagnostics"])  # R-hat / ESS per parameter
    assert np.isfinite(nuts["max_r_hat"]) and table["methods"]["nuts"]["max_r_hat"] == nuts["max_r_hat"]
    md = (out / "table.md").read_text()
    assert all(m.upper() in md for m in mt.METHODS) and "published" in md
    assert (out / "table.png").stat().st_size > 10_000
    ident = json.loads((out / "identifiability.json").read_text())
    assert np.array(ident["hessian"]).shape == (3, 3) and (out / "identifiability.png").exists()
    for name in ("delta", "eta", "J"):  # the profile never lies above the slice
        assert np.all(np.array(ident["profiles"][name]["values"]) <= np.array(ident["slices"][name]["values"]) + 1e-9)
    # resumes: a second call loads every run instead of refitting
    before = {p: p.stat().st_mtime for p in out.glob("runs/*/record.json")}
    mt.run_table("stochastic", out=out, repeats=1, budget="tiny", progress=False)
    assert {p: p.stat().st_mtime for p in out.glob("runs/*/record.json")} == before


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="case must be one of"):
        mt.make_data("noisy")
    with pytest.raises(ValueError, match="unknown methods"):
        mt.run_table("stochastic", out=tmp_path, methods=["hmc"])
    with pytest.raises(ValueError, match="case 'stochastic' observes r"):
        mt.run_table("stochastic", out=tmp_path, methods=["de+tde"])
    with pytest.raises(ValueError, match="unknown methods"):
        mt.run_table("missing", out=tmp_path, methods=["npe+tde"])
    result = CliRunner().invoke(app, ["bench", "mpr-table", "--methods", "de", "--budget", "huge", "--out",
                                      str(tmp_path)])
    assert result.exit_code == 2 and "budget must be one of" in result.output


@pytest.mark.heavy
def test_nuts_recovers_the_posterior_of_a_short_mpr_trace():
    """35 s of the skeleton (5 s of the step current) every 10 ms with Gaussian observation noise 0.05: the
    ODE-likelihood posterior of (Δ, η, J) is close to Gaussian, so its mean and sd must match the Laplace /
    Gauss-Newton reference N(θ̂, ε² (JᵀJ)⁻¹) at the least-squares fit θ̂."""
    det = mt.make_data("deterministic", 0)
    rng = np.random.default_rng(3)
    short = det.traces[:, :35_000]
    data = dataclasses.replace(det, traces=short + 0.05 * rng.normal(size=short.shape))
    with jax.enable_x64(True):
        @jax.jit
        def residual(theta):
            return (mt.skeleton(theta[None], data)[0] - jnp.asarray(data.observed)).ravel()

        jacobian = jax.jit(jax.jacfwd(residual))
        theta_hat = jnp.asarray(mt.TRUTH)
        for _ in range(8):  # Gauss-Newton to the least-squares fit
            jac = jacobian(theta_hat)
            theta_hat = theta_hat - jnp.linalg.solve(jac.T @ jac, jac.T @ residual(theta_hat))
        jac = jacobian(theta_hat)
        eps2 = float(jnp.sum(residual(theta_hat) ** 2)) / (data.observed.size - 3)
        laplace_sd = np.sqrt(np.diag(eps2 * np.linalg.inv(np.asarray(jac.T @ jac))))
        target = mt.ode_likelihood(data)
        key_init, key_run = jax.random.split(jax.random.key(0))
        init = target.init(key_init, 2)  # started near the fit: the test is of the posterior's shape, not the search
        jitter = 1.0 + 0.002 * jax.random.normal(key_init, (2, 3), jnp.float64)
        init["u"] = from_box(theta_hat[None] * jitter, mt.LOW, mt.HIGH)
        result = mcmc.nuts(target.logdensity, init, key_run, num_warmup=150, num_samples=200, max_tree_depth=6,
                           keep=target.keep, progress=False)
    draws = result.samples["theta"].reshape(-1, 3)
    assert result.diagnostics(["theta"])["theta[0]"]["r_hat"] < 1.05
    np.testing.assert_allclose(draws.mean(0), np.asarray(theta_hat), atol=0.3 * laplace_sd.max())
    np.testing.assert_allclose(draws.std(0), laplace_sd, rtol=0.25)
    assert np.all(np.abs(draws.mean(0) - mt.TRUTH) < 4 * laplace_sd)  # and the truth is where it should be


def test_nuts_on_exact_data_samples_the_fixed_eps_posterior():
    """Exact data (the skeleton itself, 20 s): ε fixed, chains whitened at a point near the truth; the draws
    must have the Laplace sd ε·sqrt(diag((JᵀJ)⁻¹)) (JᵀJ at the truth, computed here in θ) and centre on the
    truth, where the posterior peaks."""
    det = mt.make_data("deterministic", 0)
    data = dataclasses.replace(det, traces=det.traces[:, :20_000])
    eps = 1e-3
    with jax.enable_x64(True):
        jac = jax.jacfwd(lambda t: mt.skeleton(t[None], data)[0].ravel())(jnp.asarray(mt.TRUTH))
        laplace_sd = eps * np.sqrt(np.diag(np.linalg.inv(np.asarray(jac.T @ jac))))
        target = mt.ode_likelihood(data, eps=eps, centre=mt.TRUTH + 3 * laplace_sd)  # off-centre on purpose
        key_init, key_run = jax.random.split(jax.random.key(1))
        result = mcmc.nuts(target.logdensity, target.init(key_init, 2), key_run, num_warmup=200, num_samples=300,
                           keep=target.keep, dense_mass=target.dense_mass, progress=False)
    draws = result.samples["theta"].reshape(-1, 3)
    assert max(d["r_hat"] for d in result.diagnostics(["theta"]).values()) < 1.05
    np.testing.assert_allclose(draws.std(0), laplace_sd, rtol=0.2)
    assert np.all(np.abs(draws.mean(0) - mt.TRUTH) < 0.4 * laplace_sd)
    assert result.mean_tree_size.mean() < 16  # whitened: short trajectories
    with pytest.raises(ValueError, match="give eps too"):
        mt.ode_likelihood(data, centre=mt.TRUTH)


def test_ekf_likelihood_finds_the_truth_with_hidden_r():
    """The missing case (v alone, 40 s: the stimulus starts at 30 s): the extended Kalman filter's density,
    climbed from a start off the truth, peaks near it (within 3 Laplace sds for each of Δ, η, J) with σ near
    the simulated 0.1, and its Laplace draws (the NUTS chains' starting distribution) cover the truth; the
    filtered r tracks the hidden r."""
    missing = mt.make_data("missing", 0)
    data = dataclasses.replace(missing, traces=missing.traces[:, :40_000])
    with jax.enable_x64(True):
        target = mt.ekf_likelihood(data, start=mt.TRUTH + np.array([0.1, -0.3, 0.5]))
        draws = jax.vmap(target.keep)(target.init(jax.random.key(0), 200))
        at_mode = target.keep({"w": jnp.zeros(5)})
    theta, sd = np.asarray(draws["theta"]), np.asarray(draws["theta"]).std(0)
    assert np.all(np.abs(np.asarray(at_mode["theta"]) - mt.TRUTH) < 3 * sd), (at_mode["theta"], sd)
    assert np.all(sd < np.array([0.2, 0.5, 0.8]))  # informative: a fraction of the box
    assert abs(float(at_mode["sigma"]) - 0.1) < 0.02
    low, high = np.quantile(theta, [0.005, 0.995], axis=0)
    assert np.all((low < mt.TRUTH) & (mt.TRUTH < high))
    hidden_r = data.samples[1]
    assert np.sqrt(np.mean((np.asarray(at_mode["r"]) - hidden_r) ** 2)) < 0.5 * hidden_r.std()
    assert np.isfinite(float(target.logdensity({"w": jnp.zeros(5)})))
