"""Seed 003 §3.7: SBI over the MPR phase diagram from dynamical-class features (Fig. 8).

Linear stability (:mod:`neurosbi.dynamics.stability`) splits the (η/Δ, J/√Δ) plane of the autonomous
model into a stable node, a stable focus and a bistable wedge. Here NPE is trained on features that say
which of these a trace shows, not on the trace itself: for each epoch of the published protocol (before,
during and after the step current of 3 on [30, 60) s), the settled r and v (means over the epoch's last
5 s) and the number of damped oscillations (local maxima of v standing more than 10⁻³ above the settled
value in the epoch's first 10 s). A bistable trace settles low before the step, oscillates up to the
high state during it and stays there after it (hysteresis); a node returns low; a focus oscillates in
every epoch. Traces are the deterministic skeleton (σ = 0) sampled every 10 ms, the table's.

``run_regimes(out)`` (CLI: ``neurosbi bench mpr-regimes``) simulates the prior box, trains NPE, and for one
observation in each regime reports the share of posterior draws whose linear-stability regime is the
observation's (against the prior's share), and draws the posterior draws over the phase diagram
(``regimes.json``, ``regimes.png``).
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .dynamics.stability import REGIMES, mpr_phase_diagram, mpr_regime
from .mpr_table import HIGH, LOW, PARAM_NAMES, make_data, skeleton

EPOCHS = ((0.0, 30.0), (30.0, 60.0), (60.0, 100.0))  # seconds: before, during, after the step current
SETTLE_S, OSCILLATE_S, MIN_PEAK = 5.0, 10.0, 1e-3
FEATURE_NAMES = tuple(f"{name}_{epoch}" for epoch in ("before", "during", "after")
                      for name in ("r_settled", "v_settled", "oscillations"))
# One observation per regime: the table's truth (bistable) and two points the quartic puts in the others.
OBSERVATIONS = {"bistable": (0.7, -4.6, 14.5), "focus": (2.5, -3.5, 14.0), "node": (2.0, -8.0, 8.0)}


def regime_features(paths, dt: float = 0.01):
    """``paths [batch, 2, n]`` (v, r every ``dt`` s) -> features ``[batch, 9]`` (``FEATURE_NAMES``)."""
    v, r = paths[:, 0], paths[:, 1]
    out = []
    for start, stop in EPOCHS:
        a, b = round(start / dt), round(stop / dt)
        settle = slice(b - round(SETTLE_S / dt), b)
        v_set, r_set = v[:, settle].mean(1), r[:, settle].mean(1)
        w = v[:, a:a + round(OSCILLATE_S / dt)]
        peak = (w[:, 1:-1] > w[:, :-2]) & (w[:, 1:-1] >= w[:, 2:]) & (w[:, 1:-1] - v_set[:, None] > MIN_PEAK)
        out += [r_set, v_set, peak.sum(1).astype(paths.dtype)]
    return jnp.stack(out, axis=1)


@functools.cache
def _protocol():
    """The published protocol (stimulus, initial state, 10 ms sampling) and the jitted feature function,
    built once per process."""
    data = make_data("deterministic")
    return data, jax.jit(lambda t: regime_features(skeleton(t, data)))


def simulate_features(theta, *, chunk: int = 1000, progress: bool = True) -> np.ndarray:
    """Features of the skeleton at each row of ``theta [n, 3]`` (float32; NaN rows where it diverged)."""
    from tqdm.auto import tqdm

    _, f = _protocol()
    theta = np.asarray(theta, np.float32)
    out = []
    for start in tqdm(range(0, theta.shape[0], chunk), desc="regime features", disable=not progress):
        block = theta[start:start + chunk]
        padded = np.concatenate([block, np.repeat(block[-1:], chunk - block.shape[0], 0)])  # one compiled shape
        out.append(np.asarray(f(jnp.asarray(padded)))[: block.shape[0]])
    return np.concatenate(out)


def run_regimes(out, *, num_simulations: int = 20_000, num_posterior_samples: int = 2000, seed: int = 0,
                config=None, progress: bool = True) -> dict:
    """Train NPE on regime features over the prior box; write ``regimes.json`` and ``regimes.png``."""
    from . import plotting
    from ._runtime import describe_machine
    from .inference.npe import NPEConfig, fit_npe
    from .priors import box_uniform

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    key_prior, key_train, key_sample = jax.random.split(jax.random.key(seed), 3)
    prior = box_uniform(LOW, HIGH)
    theta = np.asarray(prior.sample(key_prior, (num_simulations,)), np.float64)
    x = simulate_features(theta, progress=progress)
    simulate_s = time.perf_counter() - start
    posterior, history = fit_npe(theta, x, prior, key=key_train, config=config or NPEConfig(),
                                 param_names=PARAM_NAMES, progress=progress)
    train_s = time.perf_counter() - start - simulate_s
    prior_regimes = mpr_regime(theta[:, 0], theta[:, 1], theta[:, 2])
    observed = np.array(list(OBSERVATIONS.values()))
    x_obs = simulate_features(observed, progress=False)
    record = {"num_simulations": num_simulations, "num_invalid": int(np.sum(~np.all(np.isfinite(x), axis=1))),
              "features": list(FEATURE_NAMES), "simulate_s": simulate_s, "train_s": train_s,
              "machine": describe_machine(), "observations": {}}
    draws = {}
    for i, (name, point) in enumerate(OBSERVATIONS.items()):
        label = int(mpr_regime(*point))
        if REGIMES[label] != name:
            raise AssertionError(f"observation {name} at {point} is in the {REGIMES[label]} regime")
        samples = np.asarray(posterior.sample(jax.random.fold_in(key_sample, i), num_posterior_samples, x_obs[i]))
        regimes = mpr_regime(samples[:, 0], samples[:, 1], samples[:, 2])
        draws[name] = samples
        record["observations"][name] = {
            "theta": dict(zip(PARAM_NAMES, point)), "features": dict(zip(FEATURE_NAMES, x_obs[i].tolist())),
            "posterior_share_in_regime": float(np.mean(regimes == label)),
            "prior_share_in_regime": float(np.mean(prior_regimes == label)),
            "posterior_regime_shares": {r: float(np.mean(regimes == k)) for k, r in enumerate(REGIMES)},
            "posterior_mean": dict(zip(PARAM_NAMES, samples.mean(0).tolist()))}
    record["seconds"] = time.perf_counter() - start
    (out / "regimes.json").write_text(json.dumps(record, indent=2))
    eta_grid, j_grid = np.linspace(-15, 0, 301), np.linspace(0, 30, 301)
    data, _ = _protocol()
    with jax.enable_x64(True):
        medians = np.stack([np.median(draws[n], 0) for n in OBSERVATIONS])
        paths = {"observed": np.asarray(skeleton(jnp.asarray(observed), data)),
                 "predicted": np.asarray(skeleton(jnp.asarray(medians), data))}
    plotting.mpr_regimes(eta_grid, j_grid, mpr_phase_diagram(eta_grid, j_grid), REGIMES, draws, OBSERVATIONS, paths,
                         record, path=out / "regimes.png")
    return record
