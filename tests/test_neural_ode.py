"""Neural ODEs: a linear system's matrix recovered from its trajectories; segmenting and input checks."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

from neurosbi.dynamics import NeuralODEConfig, field_error, fit_neural_ode, segments

A = np.array([[-0.5, -2.0], [2.0, -0.5]])


@pytest.fixture(scope="module")
def linear_fit():
    rng = np.random.default_rng(0)
    dt, t = 0.05, np.arange(100) * 0.05
    traj = np.stack([[expm(A * s) @ y for s in t] for y in rng.uniform(-1, 1, (40, 2))])
    config = NeuralODEConfig(iterations=1500, learning_rate=1e-2, log_every=500)
    return fit_neural_ode(traj, dt, key=jax.random.key(0), config=config, progress=False)


def test_neural_ode_learns_a_linear_systems_matrix(linear_fit):
    model, history = linear_fit
    J = np.asarray(jax.jacfwd(model)(jnp.zeros(2)))
    assert np.max(np.abs(J - A)) < 0.05
    assert history["test_loss"][-1] < 1e-4 < history["train_loss"][0]
    assert len(history["test_trajectories"]) == 10 and not set(history["test_trajectories"]) & set(
        history["train_trajectories"])
    grid = np.stack(np.meshgrid(np.linspace(-0.7, 0.7, 8), np.linspace(-0.7, 0.7, 8)), -1).reshape(-1, 2)
    err = field_error(model, lambda y: jnp.asarray(A, jnp.float32) @ y, grid)
    assert err["relative_rms"] < 0.05 and err["median_angle_degrees"] < 2


def test_segments_and_bad_inputs():
    traj = np.arange(2 * 25 * 3, dtype=float).reshape(2, 25, 3)
    seg = segments(traj, 10)
    assert seg.shape == (4, 10, 3) and np.array_equal(seg[2], traj[1, :10])  # the 5-point tails are dropped
    with pytest.raises(ValueError, match="shorter than one segment"):
        segments(traj, 30)
    with pytest.raises(ValueError, match="NaN"):
        fit_neural_ode(np.full((4, 20, 2), np.nan), 0.1, key=jax.random.key(0), progress=False)
    with pytest.raises(ValueError, match="segment_length"):
        NeuralODEConfig(segment_length=1)


def test_mpr_data_sets_and_the_true_fixed_points():
    from neurosbi.dynamics import mpr_dataset
    from neurosbi.dynamics._neural_ode_applications import DELTA, ETA, J, _fixed_points, mpr_field

    det = mpr_dataset("deterministic", jax.random.key(0))
    assert det.shape == (100, 100, 2) and np.all(np.isfinite(det))
    assert mpr_dataset("noisy-large", jax.random.key(0)).shape == (400, 100, 2)
    # deterministic data follow the field: one Euler step of 0.01 ten times ≈ the next sample
    assert np.allclose(det[:, 0, 0], np.repeat(np.linspace(0.1, 3.0, 10), 10))
    # fixed points: roots of v⁴ + η v² − (JΔ/2π) v − (Δ/2)² with r = −Δ/(2π v) (reference §2.1)
    roots = np.roots([1.0, 0.0, ETA, -J * DELTA / (2 * np.pi), -(DELTA / 2) ** 2])
    v = np.sort([x.real for x in roots if abs(x.imag) < 1e-9 and x.real < 0])
    found = _fixed_points(mpr_field, [[0.08, -2.0], [0.5, -0.5], [1.0, -0.1]])
    assert np.allclose(sorted(p[1] for p in found), v, atol=1e-4)
    with pytest.raises(ValueError, match="noisy-large"):
        mpr_dataset("noisier", jax.random.key(0))


def test_neural_ode_command_writes_its_outputs(tmp_path):
    from typer.testing import CliRunner

    from neurosbi.cli import app

    res = CliRunner().invoke(app, ["dynamics", "neural-ode", "--iterations", "60", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout.strip().splitlines()[-1])
    assert record["trajectories"] == 100 and len(record["true_fixed_points"]) == 3
    assert (tmp_path / "neural_ode.png").exists() and (tmp_path / "neural_ode.json").exists()


def test_qif_extrapolation_reports_train_and_extrapolation_errors(tmp_path):
    from neurosbi.dynamics import run_qif_extrapolation

    r = run_qif_extrapolation(out=tmp_path, iterations=20, train_points=40, total_points=200, n_neurons=200,
                              progress=False)
    assert r["total_points"] - r["train_points"] == 160 and np.isfinite(r["rmse_extrapolation"])
    assert len(r["rmse_per_channel_extrapolation"]) == 2 and (tmp_path / "neural_ode.png").exists()
    with pytest.raises(ValueError, match="train_points"):
        run_qif_extrapolation(out=tmp_path, train_points=300, total_points=200)
