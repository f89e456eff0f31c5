"""Neural ODEs for macroscopic dynamics (seed 003 §3.8; reference notes §2.9): a small MLP vector field
``ẏ = F_φ(y)`` trained so that its Heun rollouts from the start of short trajectory segments match the
segments (Chen et al. 2018; the seed's setting: one hidden layer of 16 tanh units, Adam, segments of 10
points).

Built on equinox (the MLP), diffrax (the Heun steps) and optax (Adam); what is written here is the
segment bookkeeping, the loss, and the comparison of the learned field with a known one.
"""

from __future__ import annotations

import time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm


class NeuralODEConfig(eqx.Module):
    """Training settings (defaults: the seed's).

    Attributes:
        width: hidden units of the one-hidden-layer tanh MLP.
        depth: hidden layers.
        segment_length: points per training segment (the rollout horizon).
        iterations: Adam steps.
        learning_rate: Adam step size.
        batch_size: segments per step (None: all training segments).
        substeps: Heun steps per sampling interval.
        test_fraction: trajectories held out for the test loss (whole trajectories).
        log_every: iterations between test-loss evaluations in the history.
    """

    width: int = 16
    depth: int = 1
    segment_length: int = 10
    iterations: int = 45_000
    learning_rate: float = 1e-3
    batch_size: int | None = None
    substeps: int = 1
    test_fraction: float = 0.25
    log_every: int = 500

    def __check_init__(self):
        if self.segment_length < 2 or self.iterations < 1 or self.width < 1 or self.substeps < 1:
            raise ValueError("expected segment_length >= 2, iterations >= 1, width >= 1 and substeps >= 1, got "
                             f"{self.segment_length}, {self.iterations}, {self.width}, {self.substeps}")
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"expected 0 <= test_fraction < 1, got {self.test_fraction}")


class NeuralODE(eqx.Module):
    """``ẏ = mlp((y − shift) / scale) · scale`` (inputs and outputs standardized by the training data)."""

    mlp: eqx.nn.MLP
    shift: jax.Array
    scale: jax.Array

    def __call__(self, y):
        return self.mlp((y - self.shift) / self.scale) * self.scale

    def rollout(self, y0, dt: float, steps: int, substeps: int = 1):
        """Heun (explicit trapezoid) trajectory ``[steps + 1, d]`` from ``y0`` sampled every ``dt``."""
        ts = jnp.arange(steps + 1) * dt
        sol = diffrax.diffeqsolve(diffrax.ODETerm(lambda t, y, args: self(y)), diffrax.Heun(), ts[0], ts[-1],
                                  dt / substeps, y0, saveat=diffrax.SaveAt(ts=ts), max_steps=steps * substeps + 1)
        return sol.ys


def segments(trajectories, length: int) -> np.ndarray:
    """Non-overlapping segments ``[S, length, d]`` cut from trajectories ``[B, T, d]``; a tail shorter than
    ``length`` is dropped."""
    trajectories = np.asarray(trajectories)
    if trajectories.ndim != 3:
        raise ValueError(f"expected trajectories of shape [B, T, d], got {trajectories.shape}")
    per = trajectories.shape[1] // length
    if per == 0:
        raise ValueError(f"trajectories of {trajectories.shape[1]} points are shorter than one segment of {length}: "
                         "lower segment_length")
    cut = trajectories[:, : per * length]
    return cut.reshape(trajectories.shape[0] * per, length, trajectories.shape[2])


def fit_neural_ode(trajectories, dt: float, *, key, config: NeuralODEConfig = NeuralODEConfig(),
                   progress: bool = True) -> tuple[NeuralODE, dict]:
    """Train a neural ODE on trajectories ``[B, T, d]`` sampled every ``dt``.

    Whole trajectories are split into training and test sets (``config.test_fraction``), each cut into
    segments of ``config.segment_length`` points; the loss is the mean squared difference between the
    segment and the Heun rollout from its first point.

    Returns:
        ``(model, history)``: history has ``iteration``, ``train_loss`` (every step), ``test_loss`` (every
        ``log_every``), ``seconds``, and the split (``train_trajectories``, ``test_trajectories``).
    """
    data = np.asarray(trajectories, np.float32)
    if data.ndim != 3 or not np.all(np.isfinite(data)):
        raise ValueError(f"expected finite trajectories of shape [B, T, d], got {data.shape}"
                         + ("" if np.all(np.isfinite(data)) else " with NaN/inf values: drop those trajectories"))
    k_split, k_init, k_batch = jax.random.split(key, 3)
    order = np.asarray(jax.random.permutation(k_split, len(data)))
    n_test = int(round(config.test_fraction * len(data)))
    test_idx, train_idx = order[:n_test], order[n_test:]
    train = jnp.asarray(segments(data[train_idx], config.segment_length))
    test = jnp.asarray(segments(data[test_idx], config.segment_length)) if n_test else None
    flat = data[train_idx].reshape(-1, data.shape[2])
    model = NeuralODE(eqx.nn.MLP(data.shape[2], data.shape[2], config.width, config.depth, activation=jnp.tanh,
                                 key=k_init),
                      jnp.asarray(flat.mean(0)), jnp.asarray(flat.std(0) + 1e-8))
    steps = config.segment_length - 1

    def loss_fn(m, batch):
        pred = jax.vmap(lambda seg: m.rollout(seg[0], dt, steps, config.substeps))(batch)
        return jnp.mean((pred - batch) ** 2)

    optimizer = optax.adam(config.learning_rate)
    # shift and scale are statistics of the data, not trained
    trainable = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    trainable = eqx.tree_at(lambda m: (m.shift, m.scale), trainable, (False, False))
    params, static = eqx.partition(model, trainable)
    opt_state = optimizer.init(params)

    @eqx.filter_jit
    def step(params, opt_state, batch):
        loss, grads = eqx.filter_value_and_grad(lambda p: loss_fn(eqx.combine(p, static), batch))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, loss

    evaluate = eqx.filter_jit(lambda p, batch: loss_fn(eqx.combine(p, static), batch))
    history = {"iteration": [], "train_loss": [], "test_loss": [], "train_trajectories": train_idx.tolist(),
               "test_trajectories": test_idx.tolist()}
    start = time.perf_counter()
    bar = tqdm(range(config.iterations), desc="neural ODE", disable=not progress)
    for it in bar:
        if config.batch_size is None or config.batch_size >= len(train):
            batch = train
        else:
            batch = train[jax.random.choice(jax.random.fold_in(k_batch, it), len(train), (config.batch_size,),
                                            replace=False)]
        params, opt_state, loss = step(params, opt_state, batch)
        history["train_loss"].append(float(loss))
        if (it + 1) % config.log_every == 0 or it + 1 == config.iterations:
            history["iteration"].append(it + 1)
            history["test_loss"].append(float(evaluate(params, test)) if test is not None else float("nan"))
            bar.set_postfix(train=f"{float(loss):.3g}", test=f"{history['test_loss'][-1]:.3g}")
    history["seconds"] = time.perf_counter() - start
    return eqx.combine(params, static), history


def field_error(model, true_field, grid) -> dict:
    """How well ``model`` recovers ``true_field`` on ``grid`` ``[N, d]``: relative RMS error
    ‖F_φ − F‖ / ‖F‖ over the grid, per component and overall, and the median angle between the two."""
    grid = jnp.asarray(grid, jnp.float32)
    learned = np.asarray(jax.vmap(model)(grid), np.float64)
    true = np.asarray(jax.vmap(true_field)(grid), np.float64)
    diff = learned - true
    cos = np.sum(learned * true, 1) / (np.linalg.norm(learned, axis=1) * np.linalg.norm(true, axis=1) + 1e-300)
    return {"relative_rms": float(np.sqrt(np.sum(diff**2) / np.sum(true**2))),
            "relative_rms_per_component": (np.sqrt(np.sum(diff**2, 0) / np.sum(true**2, 0))).tolist(),
            "median_angle_degrees": float(np.degrees(np.median(np.arccos(np.clip(cos, -1, 1)))))}
