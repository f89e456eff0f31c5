"""The EPI paper's analyses: resume from existing fits, the LDS contours, the V1 summary on known answers."""

import json

import jax
import numpy as np
import pytest

from neurosbi.emergent import run_epi
from neurosbi.emergent_analyses import ANALYSES, _v1_summary, choose_seed, run_analysis
from neurosbi.inference import EPIConfig, FlowSpec
from neurosbi.models import LinearSystem2D


def _fit_in_place(analysis, model, out, seed=0, **config):
    """Run EPI with a small ``config`` into the folder ``analysis`` reads its (first) fit from: its metrics
    and the ``Fit``."""
    fit = ANALYSES[analysis].fits[0]
    metrics = run_epi(model, out=out / fit.folder, prop=model.emergent_property(), seed=seed,
                      config=EPIConfig(**config), progress=False)
    return metrics, fit


def test_lds_contours_reuses_the_fit_and_finds_the_analytic_structure(tmp_path):
    first, fit = _fit_in_place("lds-contours", LinearSystem2D(), tmp_path, batch_size=200, iterations_per_epoch=500,
                               max_epochs=20, c0=1.0, beta=4.0, init_steps=500, flow=FlowSpec(hidden_units=20))
    assert first["converged"]
    result = run_analysis("lds-contours", out=tmp_path, seed=0, progress=False)
    # loaded, not refitted: the fit's record is the one written above
    assert result["fits"][fit.folder]["timings"] == first["timings"]
    assert json.loads((tmp_path / "analysis.json").read_text())["analysis"] == "lds-contours"
    assert (tmp_path / "lds_contours.png").exists()
    # Re λ1 = (a11 + a22)/2 held near 0 with sd 0.25 on a box of width 20: a11 and a22 anticorrelated
    assert abs(result["re_lambda1"]["mean"]) < 0.1 and result["corr_a11_a22"] < -0.8
    # Im λ1 = 2π needs −a12 a21 > 0: opposite signs, nearly always complex eigenvalues
    assert result["fraction_complex"] > 0.95 and result["fraction_a12_a21_opposite_sign"] > 0.95
    assert abs(result["im_lambda1"]["mean"] - 2 * np.pi) < 0.3


def test_the_converged_fit_of_greatest_entropy_is_chosen_among_seeds():
    runs = {1: {"converged": False, "entropy": 9.0}, 2: {"converged": True, "entropy": -1.0},
            3: {"converged": True, "entropy": 0.5}, 4: {"converged": True, "entropy": 0.2}}
    assert choose_seed(runs) == 3  # the unconverged seed has more entropy but is not a solution
    assert choose_seed({1: runs[1]}) == 1  # none converged: the best there is, reported as not converged


@pytest.mark.filterwarnings("ignore:EPI did not converge")  # seed 1 gets one epoch on purpose
def test_several_seeds_fit_in_their_own_folders_and_the_converged_one_is_analysed(tmp_path):
    small = dict(batch_size=200, iterations_per_epoch=500, c0=1.0, beta=4.0, init_steps=500,
                 flow=FlowSpec(hidden_units=20))
    good, fit = _fit_in_place("lds-contours", LinearSystem2D(), tmp_path / "seed-0", seed=0, max_epochs=20, **small)
    bad, _ = _fit_in_place("lds-contours", LinearSystem2D(), tmp_path / "seed-1", seed=1, max_epochs=1,
                           **{**small, "iterations_per_epoch": 5})
    assert good["converged"] and not bad["converged"]
    result = run_analysis("lds-contours", out=tmp_path, seed=[1, 0], progress=False)
    assert result["seed"] == [1, 0] and result["seeds"][fit.folder]["chosen_seed"] == 0
    assert result["fits"][fit.folder]["seed"] == 0 and result["fits"][fit.folder]["timings"] == good["timings"]
    assert result["seeds"][fit.folder]["1"]["converged"] is False
    assert abs(result["re_lambda1"]["mean"]) < 0.1  # the analysis read the converged fit
    with pytest.raises(ValueError, match="distinct"):
        run_analysis("lds-contours", out=tmp_path, seed=[0, 0])


def test_v1_summary_separates_what_drives_the_statistic_from_what_is_free():
    z = np.asarray(jax.random.uniform(jax.random.key(0), (20_000, 4), maxval=0.5), np.float64)
    stats = 40 * (z[:, 0] ** 2 + z[:, 1] ** 2)  # a statistic of sigma_E^2 + sigma_P^2 alone
    s = _v1_summary(z, stats)
    assert s["corr_s_E_with"]["sigma_E2_plus_sigma_P2"] == pytest.approx(1.0)
    assert abs(s["corr_s_E_with"]["sigma_S"]) < 0.03 and abs(s["corr_s_E_with"]["sigma_V"]) < 0.03
    assert s["sigma_S"]["sd"] == pytest.approx(0.5 / np.sqrt(12), rel=0.02)
    assert s["sigma_E2_plus_sigma_P2"]["mean"] == pytest.approx(2 * 0.25 / 3, rel=0.02)  # E[σ²] = 0.5²/3


def test_unknown_analysis_is_refused(tmp_path):
    with pytest.raises(ValueError, match="lds-contours"):
        run_analysis("v2-variability", out=tmp_path)


@pytest.mark.heavy  # the frequency map simulates 41 x 41 x 20 circuits: ~30 s
@pytest.mark.filterwarnings("ignore:EPI did not converge")  # a 30-step fit, only to exercise the analysis
def test_stg_sensitivity_runs_on_a_small_fit_and_orients_the_directions(tmp_path):
    from neurosbi.emergent_analyses import _signed
    from neurosbi.models import STGHub

    np.testing.assert_array_equal(_signed(np.array([0.6, -0.8]), 1), [-0.6, 0.8])
    _fit_in_place("stg-sensitivity", STGHub(), tmp_path, batch_size=50, iterations_per_epoch=30, max_epochs=1,
                  c0=1e5, beta=2.0, init_steps=200, test_batches=5, flow=FlowSpec(hidden_units=8))
    result = run_analysis("stg-sensitivity", out=tmp_path, seed=0, progress=False)
    values = result["hessian_eigenvalues"]
    assert len(values) == 2 and values[0] <= values[1]
    v1, v2 = np.array(result["sensitive_direction_v1"]), np.array(result["robust_direction_v2"])
    assert v1[1] >= 0 and v2[1] >= 0 and abs(v1 @ v2) < 1e-4  # orthonormal, shown with positive g_synA
    w = np.array(result["perturbations"]["sensitive_v1"]["hub_frequency_Hz"])
    assert w.shape == (9,) and np.all((w > 0.2) & (w < 0.8))  # between the slow and the fast rhythm
    assert (tmp_path / "stg_sensitivity.png").exists()


@pytest.mark.heavy  # nine conditional mode searches and 27 accuracy profiles of 1,000 trials: ~1 min
@pytest.mark.filterwarnings("ignore:EPI did not converge")  # a 30-step fit, only to exercise the analysis
def test_sc_regimes_runs_on_a_small_fit(tmp_path):
    from neurosbi.models import SCProAnti

    _fit_in_place("sc-regimes", SCProAnti(trials=20), tmp_path, batch_size=20, iterations_per_epoch=30,
                  max_epochs=1, c0=100.0, beta=2.0, init_steps=200, test_batches=5, flow=FlowSpec(hidden_units=8))
    result = run_analysis("sc-regimes", out=tmp_path, seed=0, progress=False)
    modes = result["modes"]
    assert [m["sW"] for m in modes] == [1.0, 0.75, 0.5, 0.25, 0.0, -0.25, -0.5, -0.75, -1.0]
    for m in modes:
        assert m["mode"][0] == pytest.approx(m["sW"], abs=1e-6)  # the conditional mode keeps sW fixed
        assert m["sensitive_direction_v1"][3] <= 0  # the paper's sign convention
        assert np.all((np.array(m["along_v1"]) >= 0) & (np.array(m["along_v1"]) <= 1))
    for m in modes:  # the property check at the mode: both accuracies within two target stds of 0.75
        assert m["meets_property"] == bool(np.all(np.abs(np.array(m["accuracy_at_mode"]) - 0.75) <= 0.15))
    every = result["regime_1_sW"] + result["regime_2_sW"] + result["modes_off_property_sW"]
    assert sorted(every, reverse=True) == [m["sW"] for m in modes]
    assert 0 <= result["mass_sW_positive"] <= 1
    assert (tmp_path / "sc_regimes.png").exists()


def test_cli_takes_repeated_seeds_and_refuses_duplicates(tmp_path):
    from typer.testing import CliRunner

    from neurosbi.cli import app

    res = CliRunner().invoke(app, ["epi-analysis", "lds-contours", "--out", str(tmp_path), "--seed", "2", "--seed", "2"])
    assert res.exit_code == 2 and "distinct" in res.output and "[2, 2]" in res.output
    assert not (tmp_path / "seed-2").exists()  # refused before any fit
