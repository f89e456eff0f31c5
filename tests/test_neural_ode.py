"""Neural ODEs: a linear system's matrix recovered from its trajectories; segmenting and input checks."""

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
