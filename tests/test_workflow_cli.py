"""The infer job and the CLI: outputs, metrics, bad input at the boundary."""

import json

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from neurosbi import OutputError, UnknownModelError, models
from neurosbi.cli import app
from neurosbi.diagnostics import zscore_shrinkage
from neurosbi.models import from_function
from neurosbi.workflow import infer

runner = CliRunner()


@pytest.fixture(scope="module")
def registered(gaussian_model):
    models.register("linear_gaussian", lambda: gaussian_model, "toy with an analytic posterior")
    return gaussian_model


def test_infer_writes_every_output_and_is_calibrated(registered, tmp_path):
    metrics = infer(registered, out=tmp_path, num_simulations=3000, seed=1, progress=False, num_coverage_tests=200)
    for name in ["metrics.json", "posterior.nc", "posterior.eqx", "pairplot.png", "ppc.png", "calibration.png",
                 "report.html", "bank.zarr", "conditional_correlations.png", "path.png", "perturbations.png",
                 "ppc_features.png", "misspecification.png"]:
        assert (tmp_path / name).exists(), name
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    for field in ["true_params", "posterior_mean", "posterior_std", "z_score", "shrinkage", "rmse_posterior_mean",
                  "coverage", "num_invalid_simulations", "timings"]:
        assert field in on_disk, field
    assert set(on_disk["timings"]) >= {"simulate_s", "train_s", "sample_s", "total_s"}
    # analytic posterior std is sqrt(0.2) = 0.447; prior std 1: shrinkage 0.8
    for n in registered.param_names:
        assert on_disk["posterior_std"][n] == pytest.approx(np.sqrt(0.2), rel=0.15)
        assert on_disk["shrinkage"][n] == pytest.approx(0.8, abs=0.06)
    assert metrics["coverage"]["max_error"] < 0.15
    # the temperature is fitted on 300 held-out simulations (a tenth), coverage on 200 others
    t = on_disk["temperature"]
    assert t["num_calibration"] == 300 and 0.8 < t["temperature"] < 1.25, t
    assert t["calibration_error"] <= t["calibration_error_at_1"]
    assert "posterior temperature" in (tmp_path / "report.html").read_text()
    # posterior N(0.8 x, 0.2 I): independent parameters, equal curvature 1 / 0.2 in every direction
    corr = on_disk["analysis"]["conditional_correlation"]
    assert abs(corr["theta_0"]["theta_1"]) < 0.15, corr
    assert on_disk["analysis"]["path"]["min_log_prob"] >= on_disk["analysis"]["path"]["min_log_prob_straight_line"] - 0.5
    # predictive x = theta + noise: N(0.8 x_o, 0.2 + 0.25) per coordinate, scale = std of the simulated
    # x (sqrt(1.25)); the share of draws within 2 scales of x_o in both coordinates is then at least
    # P(|N(0, 0.45)| <= 2.24 - 0.2 |x_o|)^2, above 0.9 for |x_o| < 2.5
    fp = on_disk["feature_predictive"]
    assert fp["valid"] == 1.0 and fp["num_draws"] == 200 and fp["close"] > 0.85, fp
    assert "data:image/png;base64" in (tmp_path / "report.html").read_text()
    # the model check: the simulated observation is consistent; the learned space is tested too
    check = on_disk["misspecification"]
    assert check["verdict"] == "consistent" and check["flagged"] == []
    assert [t["space"] for t in check["tests"]] == ["features", "posterior summary", "features"]
    assert "Model check" in (tmp_path / "report.html").read_text()


def test_zscore_and_shrinkage_definitions(gaussian_model):
    rng = np.random.default_rng(0)
    samples = rng.normal([1.0, 2.0], [0.5, 0.1], size=(200_000, 2))
    out = zscore_shrinkage(samples, np.array([0.0, 2.05]), gaussian_model.prior)
    np.testing.assert_allclose(out["z_score"], [2.0, 0.5], rtol=0.02)
    np.testing.assert_allclose(out["shrinkage"], [1 - 0.25, 1 - 0.01], atol=0.01)


def test_cli_models_and_infer_smoke(registered, tmp_path):
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0 and "montbrio" in res.stdout and "linear_gaussian" in res.stdout
    res = runner.invoke(app, ["infer", "linear_gaussian", "--num-simulations", "600", "--out", str(tmp_path / "o"),
                              "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["num_simulations"] == 600


def test_cli_simulate_json_line_and_resume(registered, tmp_path):
    args = ["simulate", "linear_gaussian", "--num", "500", "--out", str(tmp_path / "bank.zarr"), "--json",
            "--chunk-size", "100"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    line = json.loads(res.stdout.strip().splitlines()[-1])
    assert line["num_simulations"] == 500 and "sims_per_second" in line
    again = json.loads(runner.invoke(app, args).stdout.strip().splitlines()[-1])
    assert again["chunks_resumed"] == 5 and again["chunks_computed"] == 0
    res = runner.invoke(app, ["infer", "linear_gaussian", "--from-bank", str(tmp_path / "bank.zarr"),
                              "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["num_simulations"] == 500
    assert not (tmp_path / "o" / "bank.zarr").exists()  # trained from the given bank, simulated nothing


def test_cli_infer_streams_a_bank_and_holds_out_its_last_chunks(registered, tmp_path, monkeypatch):
    from neurosbi import workflow

    monkeypatch.setattr(workflow, "STREAM_HELD_OUT", 2000)
    bank = tmp_path / "bank.zarr"
    assert runner.invoke(app, ["simulate", "linear_gaussian", "--num", "6000", "--out", str(bank), "--chunk-size",
                               "500", "--json"]).exit_code == 0
    res = runner.invoke(app, ["infer", "linear_gaussian", "--from-bank", str(bank), "--stream", "--out",
                              str(tmp_path / "o"), "--quiet", "--calibration", "500", "--coverage-tests", "200"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["num_simulations"] == 6000
    training = metrics["training"]
    assert training["num_train"] + training["num_validation"] == 4000  # 8 of 12 chunks; 4 held out
    assert abs(metrics["z_score"]["theta_0"]) < 3 and metrics["coverage"]["max_error"] < 0.2
    small = runner.invoke(app, ["infer", "linear_gaussian", "--from-bank", str(bank), "--stream", "--out",
                                str(tmp_path / "p"), "--quiet", "--calibration", "5000"])
    assert small.exit_code == 2 and "without --stream" in small.output


def test_unknown_model_is_refused_with_the_list():
    with pytest.raises(UnknownModelError, match="unknown model 'montbrioo'; available models: .*montbrio"):
        models.get("montbrioo")
    res = runner.invoke(app, ["infer", "montbrioo"])
    assert res.exit_code == 2 and "unknown model 'montbrioo'" in res.output


def test_unwritable_output_folder_is_refused_before_work(registered, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not writable"):
        infer(registered, out=blocker / "sub", num_simulations=100, progress=False)
    res = runner.invoke(app, ["infer", "linear_gaussian", "--out", str(blocker / "sub")])
    assert res.exit_code == 2 and "not writable" in res.output


def test_observation_checks(registered):
    m = models.get("montbrio")
    with pytest.raises(Exception, match="expects 34 features"):
        m.check_observation(np.zeros(17))
    with pytest.raises(Exception, match="NaN"):
        m.check_observation(np.full(34, np.nan))
    with pytest.raises(Exception, match=r"expects \(2, 100000\)"):
        m.check_traces(np.zeros((2, 5000)))
    with pytest.raises(Exception, match="NaN"):
        m.check_traces(np.full((2, 100000), np.nan))


def test_user_function_with_wrong_output_is_refused(gaussian_model):
    with pytest.raises(Exception, match="one row per parameter row"):
        from_function(lambda k, th: th[:1], gaussian_model.prior)


@pytest.mark.heavy
def test_montbrio_default_job_recovers_the_truth(tmp_path):
    """`neurosbi infer montbrio` on a small budget: the published truth lies within 3 posterior std."""
    res = runner.invoke(app, ["infer", "montbrio", "--num-simulations", "1536", "--out", str(tmp_path), "--quiet"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert all(z < 3.0 for z in metrics["z_score"].values()), metrics["z_score"]
    assert all(s > 0.9 for s in metrics["shrinkage"].values()), metrics["shrinkage"]
    for name in ["pairplot.png", "ppc.png", "calibration.png", "report.html", "posterior.nc"]:
        assert (tmp_path / name).exists()


def test_key_reproducibility(gaussian_model):
    from neurosbi import simulate

    a = simulate(gaussian_model, 64, jax.random.key(3), progress=False)
    b = simulate(gaussian_model, 64, jax.random.key(3), progress=False)
    np.testing.assert_array_equal(a.x, b.x)


def test_cli_autocorr_option(registered):
    from neurosbi.cli import _model

    m = _model("montbrio", observe="v", autocorr=True)
    assert len(m.feature_names) == 35 and m.feature_names[17] == "v_acf2_rest"
    res = runner.invoke(app, ["infer", "linear_gaussian", "--autocorr"])
    assert res.exit_code == 2 and "--autocorr adds autocorrelation features to montbrio" in res.output


def test_cli_infer_in_rounds(registered, tmp_path):
    res = runner.invoke(app, ["infer", "linear_gaussian", "--num-simulations", "900", "--rounds", "3",
                              "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert [r["proposal"] for r in metrics["rounds"]] == ["prior", "truncated prior", "truncated prior"]
    assert metrics["num_simulations"] == 900 and "not_applicable" in metrics["coverage"]
    assert all(z < 3 for z in metrics["z_score"].values()), metrics["z_score"]
    assert (tmp_path / "o" / "report.html").exists() and not (tmp_path / "o" / "calibration.png").exists()
    res = runner.invoke(app, ["infer", "linear_gaussian", "--rounds", "2", "--from-bank", str(tmp_path / "x"),
                              "--out", str(tmp_path / "p")])
    assert res.exit_code == 2 and "cannot be combined with rounds > 1" in res.output


def test_infer_with_a_cnn_on_raw_traces(short_montbrio, tmp_path):
    """``embedding="cnn"``: the bank holds every 20th trace sample and a CNN learns the summary; the
    posterior still shrinks the prior and covers the truth of the short MPR protocol."""
    metrics = infer(short_montbrio, out=tmp_path, num_simulations=2048, seed=0, progress=False, analysis=False,
                    embedding="cnn", trace_every=20, num_coverage_tests=50)
    assert metrics["model"] == "montbrio-traces" and len(metrics["model_config"]) > 1
    shrink = np.array(list(metrics["shrinkage"].values()))
    z = np.array(list(metrics["z_score"].values()))
    assert np.all(shrink > 0.5) and np.all(np.abs(z) < 3.5), (shrink, z)
    # raw traces are too many features for a density: the check runs its MMD tests only, and says so
    check = metrics["misspecification"]
    assert [t["space"] for t in check["tests"]] == ["features", "posterior summary"] and "MMD" in check["notes"][-1]
    with pytest.raises(ValueError, match="embedding must be 'cnn'"):
        infer(short_montbrio, out=tmp_path / "x", embedding="lstm")


def test_npe_config_follows_the_model_defaults():
    from neurosbi.models import HodgkinHuxley
    from neurosbi.workflow import npe_config_for

    hh = HodgkinHuxley()
    config = npe_config_for(hh)
    assert config.flow == "nsf" and config.log_features == tuple(
        hh.feature_names.index(f) for f in ("rest_std", "stim_var", "stim_kurtosis"))
    assert npe_config_for(hh, flow="maf", log_features=None).flow == "maf"

    class Odd(HodgkinHuxley):
        infer_defaults = {"log_features": ("no_such_feature",)}

    with pytest.raises(ValueError, match="no_such_feature"):
        npe_config_for(Odd())


def test_cli_check_on_observation_files(registered, tmp_path):
    np.savez(tmp_path / "far.npz", features=np.array([6.0, 6.0]))
    res = runner.invoke(app, ["check", "linear_gaussian", "--observation", str(tmp_path / "far.npz"),
                              "--num-simulations", "1500", "--out", str(tmp_path / "far"), "--quiet"])
    assert res.exit_code == 1, res.output  # misspecified
    record = json.loads((tmp_path / "far" / "check.json").read_text())
    assert record["verdict"] == "misspecified" and all(t["pvalue"] < 0.01 for t in record["tests"])
    assert (tmp_path / "far" / "misspecification.png").exists() and (tmp_path / "far" / "report.html").exists()
    (tmp_path / "near.csv").write_text("0.3,-0.2\n")
    res = runner.invoke(app, ["check", "linear_gaussian", "--observation", str(tmp_path / "near.csv"),
                              "--num-simulations", "1500", "--out", str(tmp_path / "far"), "--quiet"])
    assert res.exit_code == 0, res.output  # the bank is reused (resumed), the verdict is consistent
    assert json.loads((tmp_path / "far" / "check.json").read_text())["verdict"] == "consistent"


def test_bad_observation_files_are_refused(registered, tmp_path):
    from neurosbi.workflow import load_observation

    (tmp_path / "obs.txt").write_text("1 2")
    np.savez(tmp_path / "wrong.npz", data=np.zeros(2))
    np.savez(tmp_path / "short.npz", features=np.zeros(3))
    (tmp_path / "words.csv").write_text("a,b\nx,y\n")
    cases = {"obs.txt": "must be .npz or .csv", "missing.npz": "does not exist", "wrong.npz": r"holds \['data'\]",
             "short.npz": "expects 2 features", "words.csv": "not a table of numbers"}
    for name, message in cases.items():
        with pytest.raises(Exception, match=message):
            load_observation(registered, tmp_path / name)
    res = runner.invoke(app, ["check", "linear_gaussian", "--observation", str(tmp_path / "obs.txt")])
    assert res.exit_code == 2 and "must be .npz or .csv" in res.output
    m = models.get("montbrio")
    (tmp_path / "traces.csv").write_text("r,x\n1,2\n")
    with pytest.raises(Exception, match=r"columns \['r', 'x'\]"):
        load_observation(m, tmp_path / "traces.csv")


def test_infer_robust_npe_rs_pulls_an_outlier_back(registered, tmp_path):
    # x = theta + N(0, 0.5²) with theta ~ N(0, 1): x_1 = 8 is 7 sd outside anything simulated
    metrics = infer(registered, out=tmp_path, num_simulations=1500, seed=2, progress=False, analysis=False,
                    check=False, robust="npe-rs", observed_features=np.array([0.5, 8.0]), num_coverage_tests=100)
    rob = metrics["robust"]
    assert rob["method"] == "npe-rs" and metrics["temperature"] is None
    npe_mean, robust_mean = rob["npe_posterior_mean"]["theta_1"], metrics["posterior_mean"]["theta_1"]
    assert abs(robust_mean) < abs(npe_mean) - 0.5, (npe_mean, robust_mean)
    assert abs(metrics["posterior_mean"]["theta_0"] - 0.4) < 0.5  # the matched coordinate stays near 0.8 x_0
    res = runner.invoke(app, ["infer", "linear_gaussian", "--robust", "rnpe", "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and "npe-rs" in res.output
