"""The neural-ODE experiments of seed 003 §3.8 on the Montbrió–Pazó–Roxin mean field
(``neurosbi dynamics neural-ode``).

Data as the seed's generator (reference notes §2.9): MPR with Δ = 1, J = 15, η = −5 (bistable: a
low-activity node, a high-activity focus, a saddle between), initial conditions on a regular grid
r0 ∈ [0.1, 3] × v0 ∈ [−2, 2], 1,000 Euler steps of dt = 0.01, downsampled ×10 to 100 points, cut into
segments of 10 points, 75 / 25 % of the trajectories for training / test. Three training sets:
``deterministic`` (100 trajectories), ``noisy`` (100, σ = 0.1 on r and v), ``noisy-large`` (400, σ = 0.1).

The learned field is compared with the true one on a grid covering the data (relative RMS, median
angle), its nullclines and fixed points with the true ones; ``neural_ode.json`` and ``neural_ode.png``.

``qif``: one trajectory of the QIF spiking network (10^4 neurons, Δ = 1, η = −5, J = 15, a constant
drive of 3 from t = 0 so the population relaxes in damped oscillations to its high-activity focus),
(r, v) every 0.01 (records of 1 ms ×10); the neural ODE trains on the first 400 points and predicts all
2,000 from the first: the error on the 1,600 extrapolated points is what the seed reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.spatial

from .. import plotting
from ..models.montbrio import mean_field
from ._neural_ode import NeuralODEConfig, field_error, fit_neural_ode

DELTA, ETA, J = 1.0, -5.0, 15.0
DATASETS = {"deterministic": (100, 0.0), "noisy": (100, 0.1), "noisy-large": (400, 0.1)}
DT, STEPS, DOWNSAMPLE = 0.01, 1000, 10


def mpr_field(y):
    """The MPR field on state (r, v) with the seed's neural-ODE parameters."""
    dv, dr = mean_field(y[1], y[0], DELTA, ETA, J)
    return jnp.stack([dr, dv])


def mpr_dataset(kind: str, key) -> np.ndarray:
    """Trajectories ``[B, 100, 2]`` (r, v) sampled every 0.1 (see module docstring)."""
    if kind not in DATASETS:
        raise ValueError(f"unknown data set {kind!r}; choose one of {', '.join(DATASETS)}")
    count, sigma = DATASETS[kind]
    side = int(round(np.sqrt(count)))
    r0, v0 = np.meshgrid(np.linspace(0.1, 3.0, side), np.linspace(-2.0, 2.0, side), indexing="ij")
    y0 = jnp.asarray(np.stack([r0.ravel(), v0.ravel()], 1), jnp.float32)
    noise = jax.random.normal(key, (STEPS, len(y0), 2)) * sigma * np.sqrt(DT)

    def step(y, xi):
        y = y + DT * jax.vmap(mpr_field)(y) + xi
        return y, y

    _, path = jax.lax.scan(step, y0, noise)
    path = jnp.concatenate([y0[None], path], 0)[:STEPS:DOWNSAMPLE]  # [100, B, 2]
    return np.asarray(jnp.swapaxes(path, 0, 1))


def _fixed_points(field, guesses) -> list[list[float]]:
    found = []
    f = jax.jit(lambda y: field(jnp.asarray(y, jnp.float32)))
    for g in guesses:
        sol = scipy.optimize.root(lambda y: np.asarray(f(y), np.float64), g, tol=1e-7)
        if sol.success and sol.x[0] > 0 and not any(np.linalg.norm(sol.x - np.asarray(p)) < 1e-3 for p in found):
            found.append(sol.x.tolist())
    return sorted(found)


def run_neural_ode(kind: str = "deterministic", *, out, iterations: int = 45_000, seed: int = 0, substeps: int = 1,
                   progress: bool = True) -> dict:
    """Train a neural ODE on MPR data set ``kind`` and compare its field with the true one."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    k_data, k_fit = jax.random.split(jax.random.key(seed))
    data = mpr_dataset(kind, k_data)
    config = NeuralODEConfig(iterations=iterations, log_every=max(iterations // 50, 1), substeps=substeps)
    model, history = fit_neural_ode(data, DT * DOWNSAMPLE, key=k_fit, config=config, progress=progress)
    rr, vv = np.meshgrid(np.linspace(0.05, 3.0, 40), np.linspace(-2.5, 2.0, 40), indexing="ij")
    grid = np.stack([rr.ravel(), vv.ravel()], 1)
    guesses = [[0.08, -2.0], [0.5, -0.5], [1.5, -0.2], [2.0, 0.0], [0.3, -1.0], [1.0, -0.1]]
    true_fp, learned_fp = _fixed_points(mpr_field, guesses), _fixed_points(model, guesses)
    train_points = data[np.asarray(history["train_trajectories"])].reshape(-1, 2)
    near = scipy.spatial.cKDTree(train_points).query(grid, distance_upper_bound=0.1)[0] < np.inf
    matched = [min((float(np.linalg.norm(np.asarray(p) - np.asarray(q))) for q in learned_fp), default=None)
               for p in true_fp]
    result = {"data": kind, "trajectories": int(len(data)), "noise_sigma": DATASETS[kind][1],
              "iterations": iterations, "substeps": substeps, "seed": seed, "seconds": history["seconds"],
              "final_train_loss": history["train_loss"][-1], "final_test_loss": history["test_loss"][-1],
              "field_error": field_error(model, mpr_field, grid),
              # where the training data pass (grid points within 0.1 of a training sample, in r and v units):
              # a field learned from trajectories is only determined there
              "field_error_near_data": field_error(model, mpr_field, grid[near]),
              "grid_fraction_near_data": float(near.mean()), "true_fixed_points": true_fp,
              "learned_fixed_points": learned_fp, "fixed_point_distance": matched,
              "history": {"iteration": history["iteration"], "test_loss": history["test_loss"],
                          "train_loss": history["train_loss"][config.log_every - 1::config.log_every]}}
    learned = np.asarray(jax.vmap(model)(jnp.asarray(grid, jnp.float32))).reshape(40, 40, 2)
    true = np.asarray(jax.vmap(mpr_field)(jnp.asarray(grid, jnp.float32))).reshape(40, 40, 2)
    plotting.neural_ode_phase(rr, vv, true, learned, data, result, path=out / "neural_ode.png")
    (out / "neural_ode.json").write_text(json.dumps(result, indent=1))
    eqx.tree_serialise_leaves(out / "neural_ode.eqx", model)  # reload: tree_deserialise_leaves(path, like)
    return result


def run_qif_extrapolation(*, out, iterations: int = 10_000, train_points: int = 400, total_points: int = 2000,
                          n_neurons: int = 10_000, seed: int = 0, progress: bool = True) -> dict:
    """Neural ODE on QIF-network data: train on ``train_points``, extrapolate to ``total_points``."""
    from ..models.qif_network import QIFNetwork

    if not 2 * 10 <= train_points < total_points:
        raise ValueError(f"expected 20 <= train_points < total_points, got {train_points}, {total_points}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    k_sim, k_fit = jax.random.split(jax.random.key(seed))
    duration = total_points * DT  # records every 1 ms, kept every 10th: one point per DT = 0.01
    net = QIFNetwork(n_neurons=n_neurons, duration=duration, t_on=0.0, t_off=duration, amplitude=3.0)
    traces = np.asarray(net.simulate(k_sim, jnp.asarray([[DELTA, ETA, J]], jnp.float32)))[0]  # [2 (v, r), T]
    traj = np.stack([traces[1], traces[0]], 1)[::DOWNSAMPLE][:total_points]  # (r, v) every 0.01
    config = NeuralODEConfig(iterations=iterations, test_fraction=0.0, log_every=max(iterations // 50, 1))
    model, history = fit_neural_ode(traj[None, :train_points], DT, key=k_fit, config=config, progress=progress)
    pred = np.asarray(model.rollout(jnp.asarray(traj[0], jnp.float32), DT, total_points - 1))
    err = np.linalg.norm(pred - traj, axis=1)
    scale = np.max(np.linalg.norm(traj - traj[-1], axis=1))
    result = {"data": "qif", "n_neurons": n_neurons, "iterations": iterations, "train_points": train_points,
              "total_points": total_points, "dt": DT, "seed": seed, "seconds": history["seconds"],
              "final_train_loss": history["train_loss"][-1],
              "rmse_train_window": float(np.sqrt(np.mean(err[:train_points] ** 2))),
              "rmse_extrapolation": float(np.sqrt(np.mean(err[train_points:] ** 2))),
              "nmte_extrapolation": float(np.mean(err[train_points:]) / scale),
              "rmse_per_channel_extrapolation": np.sqrt(np.mean((pred - traj)[train_points:] ** 2, 0)).tolist(),
              "final_state": {"data": traj[-1].tolist(), "predicted": pred[-1].tolist()}}
    plotting.neural_ode_extrapolation(np.arange(total_points) * DT, traj, pred, train_points, result,
                                      path=out / "neural_ode.png")
    (out / "neural_ode.json").write_text(json.dumps(result, indent=1))
    return result
