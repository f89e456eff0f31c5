"""NUTS on differentiable log densities (blackjax), several chains in parallel, with diagnostics.

``nuts(logdensity, initial_positions, key)`` runs Stan's recipe: window adaptation of the step size
and a diagonal (or, ``dense_mass=True``, dense) mass matrix (``blackjax.window_adaptation``, target acceptance 0.8, tree depth ≤ 10),
then sampling, every chain under one ``vmap`` so a step is one compiled call for all chains. R-hat
(rank-normalized, split) and bulk / tail ESS come from ArviZ; divergences, acceptance and tree sizes
from blackjax's per-step info. Positions may be any pytree (a dict of parameters and latent paths);
``MCMCResult.diagnostics(names)`` summarises the named leaves only.

Sampling runs in blocks of draws (one compiled ``lax.scan`` per block) with a progress bar between
blocks; the adaptation is one compiled call (its schedule has no natural blocks). Memory: only what
``keep(position)`` returns is stored per draw, so a long latent path need not be (keep a thinned copy, or
none), and the adaptation's per-step information is not stored at all. Float64 is the caller's choice: run inside ``jax.enable_x64(True)`` with float64 positions.

``forward_mode(logdensity)`` gives a log density whose gradient is taken in forward mode (one tangent per
parameter) under any ``jax.grad``: for a handful of parameters and a long sequential simulation, reverse
mode stores and replays every step of the scan (the MPR ODE likelihood, 10⁵ Euler steps, 3 parameters, 4
chains: 38 ms a gradient in reverse mode, 15 ms in forward mode, 1.8 ms the value alone;
``benchmarks/mpr_gradient_modes.py``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class MCMCResult:
    """Draws and diagnostics of a multi-chain run.

    Attributes:
        samples: ``{name: [chains, draws, ...]}`` for the kept leaves.
        diverging: ``[chains, draws]``, True where the transition diverged (after warm-up).
        acceptance_rate: mean acceptance probability per chain.
        mean_tree_size: mean number of leapfrog steps per draw, per chain.
        step_size: adapted step size per chain.
        warmup_seconds, sampling_seconds: wall time (compilation included).
        last_positions: the chains' final positions (every leaf), to continue a run.
    """

    samples: dict[str, np.ndarray]
    diverging: np.ndarray
    acceptance_rate: np.ndarray
    mean_tree_size: np.ndarray
    step_size: np.ndarray
    warmup_seconds: float
    sampling_seconds: float
    last_positions: Any = None

    @property
    def divergences(self) -> np.ndarray:
        """Number of divergent transitions per chain."""
        return self.diverging.sum(axis=1)

    @property
    def num_chains(self) -> int:
        return int(self.diverging.shape[0])

    @property
    def num_draws(self) -> int:
        return int(next(iter(self.samples.values())).shape[1])

    def to_inference_data(self):
        """ArviZ ``InferenceData`` with the kept draws and the sampler's statistics."""
        import arviz as az

        return az.from_dict(posterior={k: np.asarray(v) for k, v in self.samples.items()},
                            sample_stats={"diverging": self.diverging})

    def diagnostics(self, names: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
        """R-hat (rank-normalized split), bulk and tail ESS per scalar of the named leaves."""
        import arviz as az

        names = list(names or self.samples)
        out = {}
        for name in names:
            draws = np.asarray(self.samples[name])
            flat = draws.reshape(draws.shape[0], draws.shape[1], -1)
            for j in range(flat.shape[2]):
                label = name if flat.shape[2] == 1 else f"{name}[{j}]"
                x = flat[:, :, j]
                out[label] = {
                    "r_hat": float(az.rhat(x)), "ess_bulk": float(az.ess(x, method="bulk")),
                    "ess_tail": float(az.ess(x, method="tail")), "mean": float(x.mean()), "std": float(x.std()),
                }
        return out

    def converged(self, names=None, *, r_hat: float = 1.01, ess: float = 400.0) -> bool:
        """Stan's and ArviZ's thresholds: every R-hat ≤ 1.01 and every bulk and tail ESS ≥ 400."""
        d = self.diagnostics(names)
        return all(v["r_hat"] <= r_hat and min(v["ess_bulk"], v["ess_tail"]) >= ess for v in d.values())

    def sample(self, key, n: int, name: str | None = None) -> np.ndarray:
        """``n`` draws (with replacement) from the pooled chains of leaf ``name`` (the only one if None)."""
        draws = np.asarray(self.samples[name or next(iter(self.samples))])
        pooled = draws.reshape(-1, *draws.shape[2:])
        idx = np.asarray(jax.random.choice(key, pooled.shape[0], (n,)))
        return pooled[idx]


def nuts(logdensity: Callable, initial_positions, key, *, num_warmup: int = 1000, num_samples: int = 500,
         target_acceptance: float = 0.8, max_tree_depth: int = 10, keep: Callable | None = None,
         dense_mass: bool = False, block: int = 50, progress: bool = True) -> MCMCResult:
    """Run NUTS with window adaptation on every chain in parallel.

    Args:
        logdensity: log density (up to a constant) of one position (a pytree), differentiable.
        initial_positions: the same pytree with a leading ``[chains]`` axis on every leaf.
        key: PRNG key, split into one key per chain for the warm-up and per block of draws.
        num_warmup, num_samples: Stan's 1000 / 500 by default.
        keep: ``position -> dict`` of what to store per draw (default: the position itself if it is a
            dict, else ``{"theta": position}``).
        dense_mass: adapt a dense mass matrix (few, strongly correlated parameters) instead of a diagonal one.
        block: draws per compiled block (the progress bar moves once per block).
    """
    import blackjax

    chains = jax.tree.leaves(initial_positions)[0].shape[0]
    if keep is None:
        keep = (lambda p: dict(p)) if isinstance(initial_positions, dict) else (lambda p: {"theta": p})
    warm_key, sample_key = jax.random.split(key)

    adaptation = blackjax.window_adaptation(
        blackjax.nuts, logdensity, is_mass_matrix_diagonal=not dense_mass, target_acceptance_rate=target_acceptance,
        max_num_doublings=max_tree_depth,
        adaptation_info_fn=blackjax.adaptation.base.get_filter_adapt_info_fn())

    @jax.jit
    def warmup(keys, positions):
        def one(k, p):
            (state, parameters), _ = adaptation.run(k, p, num_steps=num_warmup)
            return state, parameters
        return jax.vmap(one)(keys, positions)

    start = time.perf_counter()
    states, parameters = warmup(jax.random.split(warm_key, chains), initial_positions)
    jax.block_until_ready(states)
    warmup_seconds = time.perf_counter() - start

    @jax.jit
    def run_block(keys, states, parameters):
        def one_chain(k, state, params):
            kernel = blackjax.nuts(logdensity, step_size=params["step_size"],
                                   inverse_mass_matrix=params["inverse_mass_matrix"], max_num_doublings=max_tree_depth)

            def step(state, k):
                state, info = kernel.step(k, state)
                return state, (keep(state.position), info.is_divergent, info.acceptance_rate,
                               info.num_integration_steps)

            return jax.lax.scan(step, state, jax.random.split(k, block))

        return jax.vmap(one_chain)(keys, states, parameters)

    start = time.perf_counter()
    draws, divergent, acceptance, steps = [], [], [], []
    num_blocks = -(-num_samples // block)
    bar = _progress(num_blocks * block, progress, "NUTS sampling")
    for b in range(num_blocks):
        keys = jax.random.split(jax.random.fold_in(sample_key, b), chains)
        states, (kept, div, acc, n) = run_block(keys, states, parameters)
        draws.append(jax.device_get(kept))
        divergent.append(np.asarray(div)), acceptance.append(np.asarray(acc)), steps.append(np.asarray(n))
        bar.update(block)
    bar.close()
    sampling_seconds = time.perf_counter() - start

    samples = {k: np.concatenate([d[k] for d in draws], axis=1)[:, :num_samples] for k in draws[0]}
    div = np.concatenate(divergent, axis=1)[:, :num_samples]
    return MCMCResult(
        samples=samples, diverging=div, acceptance_rate=np.concatenate(acceptance, 1)[:, :num_samples].mean(1),
        mean_tree_size=np.concatenate(steps, 1)[:, :num_samples].mean(1),
        step_size=np.asarray(parameters["step_size"]), warmup_seconds=warmup_seconds,
        sampling_seconds=sampling_seconds, last_positions=states.position)


def forward_mode(fn: Callable) -> Callable:
    """``fn(position, *args)`` with the same values, its gradient in ``position`` taken in forward mode
    (module docstring); ``args`` are held constant (zero gradient)."""
    from jax.flatten_util import ravel_pytree

    def wrapped(position, *args):
        x, unravel = ravel_pytree(position)

        def raw(y, *a):
            return fn(unravel(y), *a)

        def f_fwd(y, *a):  # the value and one directional derivative per coordinate of the position
            tangents = jnp.eye(y.size, dtype=y.dtype)
            value, slopes = jax.vmap(lambda t: jax.jvp(lambda z: raw(z, *a), (y,), (t,)), out_axes=(None, 0))(tangents)
            return value, (slopes, a)

        def f_bwd(residuals, cotangent):
            slopes, a = residuals
            return (cotangent * slopes, *(jnp.zeros_like(v) for v in a))

        f = jax.custom_vjp(raw)
        f.defvjp(f_fwd, f_bwd)
        return f(x, *args)

    return wrapped


def _progress(total, enabled, description):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=description, leave=False)


def box_transform(low, high):
    """``(to_box, log_det)`` for a box mapped to R^dim by a logistic map: ``theta = low + (high-low) σ(u)``,
    and the log-Jacobian that turns a density on the box into one on u (a flat prior becomes this term)."""
    low, high = jnp.asarray(low), jnp.asarray(high)

    def to_box(u):
        return low + (high - low) * jax.nn.sigmoid(u)

    def log_det(u):
        return jnp.sum(jnp.log(high - low) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u))

    return to_box, log_det


def from_box(theta, low, high):
    """The inverse of ``box_transform``'s map: ``u = logit((theta - low) / (high - low))``, clipped just inside
    the box so a point on a face stays finite."""
    p = jnp.clip((jnp.asarray(theta) - low) / (jnp.asarray(high) - low), 1e-9, 1 - 1e-9)
    return jnp.log(p) - jnp.log1p(-p)
